"""Does pretraining help? {scratch, pretrained, pretrained + adapted} x {no augmentation, augmentation}.

    .venv/bin/python benchmarks/ablation.py                        # 4 tasks x 50/200/1000 pairs x 3 seeds
    .venv/bin/python benchmarks/ablation.py --seeds 0 --sizes 50   # a slice
    .venv/bin/python benchmarks/ablation.py --report               # table and plot from saved results

- **scratch**: random initialization (``strseq train --no-pretrained``);
- **pretrained**: the character LM shipped with strseq (``strseq_tasks/pretrained/lm``; not the
  pretrained encoder-decoder that ``train`` starts from by default since 2026-12-05);
- **adapted**: the shipped LM after domain-adaptive pretraining (``strseq pretrain --from``) on
  the task's unlabeled inputs: the test inputs of that seed's cells plus 3,000 other dirty values
  of the same task (the column a user cleans is exactly such a set: its values are known, their
  corrections are not), ``--adapt-minutes`` per (task, seed).

Augmentation "on" is the ``train`` default (``--augment auto``), "off" is ``--augment none``.
Every cell trains through the product path (``learn.build.train_bundle``) and is scored with the
onnxruntime ``Normalizer`` on 500 test pairs whose targets never occur in training.

Each finished cell is appended to ``benchmarks/results/ablation.jsonl`` at once, so an
interrupted run resumes where it stopped (cells already there are skipped). ``--report``
prints the markdown table (mean and spread over seeds) and writes ``ablation.json``/``.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tasks import TASKS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = RESULTS / ".cache"  # adapted LMs (regenerable, not committed)
INITS = ("scratch", "pretrained", "adapted")
AUGS = ("off", "on")
UNLABELED = 3000
SIZES = (50, 200, 1000)
# the four tasks of the core benchmark; misspellings (added later) shares the typos task's words
ABLATION_TASKS = ("typos", "names", "dates", "phones")


def _adapted_path(task: str, seed: int, minutes: float) -> Path:
    return CACHE / f"lm-{task}-seed{seed}-{minutes:g}min"


def adapt_lm(task: str, seed: int, sizes: list[int], test_size: int, minutes: float) -> str:
    """Domain-adaptive pretraining of the shipped LM on the task's unlabeled inputs (the test
    inputs of every cell of this seed, plus other dirty values of the task)."""
    from strseq_tasks.learn.lm_bundle import default_lm_path, pretrain_bundle
    from strseq_tasks.learn.pretraining import PretrainConfig

    logging.basicConfig(level=logging.WARNING)
    out = _adapted_path(task, seed, minutes)
    if (out / "manifest.json").is_file():
        return str(out)
    tests = {a for n in sizes for a, _ in TASKS[task](n, test_size, seed)[1]}
    others, _ = TASKS[task](UNLABELED, 0, seed + 7919)
    texts = sorted(tests) + [a for a, _ in others]
    cfg = PretrainConfig(seed=seed, minutes=minutes, lr=1e-3, threads=1, eval_every=100)
    pretrain_bundle(texts, out, cfg, parent=default_lm_path(), overwrite=True,
                    corpus_info={"task": task, "seed": seed, "unlabeled": len(texts)})
    return str(out)


def run_cell(task: str, size: int, init: str, aug: str, seed: int, test_size: int, lm: str | None) -> dict:
    from strseq_tasks.core.augment import AugmentConfig
    from strseq_tasks.core.metrics import summarize
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.lm_bundle import default_lm_path
    from strseq_tasks.learn.training import TrainConfig
    from strseq_tasks.serve.runtime import Normalizer

    logging.basicConfig(level=logging.WARNING)
    train, test = TASKS[task](size, test_size, seed)
    cfg = TrainConfig(seed=seed, augment=AugmentConfig(policy="auto" if aug == "on" else "none"))
    pretrained = {"scratch": None, "pretrained": default_lm_path(), "adapted": lm}[init]  # the shipped LM
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        outcome = train_bundle(train, Path(tmp) / "model", cfg, pretrained=pretrained)
        seconds = time.monotonic() - started
        predictions = Normalizer(outcome.path, threads=1).normalize([a for a, _ in test])
    metrics = summarize([a for a, _ in test], [b for _, b in test], [p.text for p in predictions],
                        [p.confidence for p in predictions])
    return {"task": task, "pairs": size, "init": init, "aug": aug, "seed": seed,
            "exact_match": metrics["exact_match"], "cer": metrics["cer"], "harm": metrics["harm"],
            "train_seconds": round(seconds, 1), "epochs": outcome.manifest["training"]["epochs"]}


def _key(row: dict) -> tuple:
    return (row["task"], row["pairs"], row["init"], row["aug"], row["seed"])


def load_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(args) -> None:
    log_path = args.out / "ablation.jsonl"
    done = {_key(r) for r in load_rows(log_path)}
    cells = [(t, n, i, a, s) for s in args.seeds for n in sorted(args.sizes, reverse=True) for t in args.tasks
             for i in args.inits for a in AUGS if (t, n, i, a, s) not in done]
    print(f"{len(cells)} cells to run ({len(done)} already in {log_path})", flush=True)
    context = multiprocessing.get_context("spawn")
    lms: dict[tuple[str, int], str] = {}
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        needed = sorted({(t, s) for t, _, i, _, s in cells if i == "adapted"})
        futures = {pool.submit(adapt_lm, t, s, sorted({*SIZES, *args.sizes}), args.test_size,
                               args.adapt_minutes): (t, s)
                   for t, s in needed}
        for future in as_completed(futures):
            lms[futures[future]] = future.result()
            print(f"adapted LM ready: {futures[future]}", flush=True)
        futures = {pool.submit(run_cell, t, n, i, a, s, args.test_size, lms.get((t, s))): (t, n, i, a, s)
                   for t, n, i, a, s in cells}
        with open(log_path, "a", encoding="utf-8") as log:
            for future in as_completed(futures):
                try:
                    row = future.result()
                except Exception as exc:  # one failed cell must not lose the others
                    print(f"FAILED {futures[future]}: {exc!r}", flush=True)
                    continue
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(json.dumps(row), flush=True)


def summarize_rows(rows: list[dict]) -> list[dict]:
    """Mean and spread (min-max over seeds) per (task, pairs, init, aug)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(_key(row)[:4], []).append(row)
    out = []
    for (task, pairs, init, aug), members in sorted(groups.items(), key=lambda kv: (
            list(TASKS).index(kv[0][0]), kv[0][1], INITS.index(kv[0][2]), AUGS.index(kv[0][3]))):
        entry = {"task": task, "pairs": pairs, "init": init, "aug": aug, "seeds": len(members)}
        for metric in ("exact_match", "cer", "harm"):
            values = [100 * m[metric] for m in members]
            entry[metric] = round(statistics.mean(values), 2)
            entry[metric + "_min"], entry[metric + "_max"] = round(min(values), 2), round(max(values), 2)
        out.append(entry)
    return out


def table(summary: list[dict]) -> str:
    lines = ["| task | pairs | init | augmentation | seeds | exact match % (min-max) | CER % | harm % |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in summary:
        lines.append(f"| {r['task']} | {r['pairs']} | {r['init']} | {r['aug']} | {r['seeds']} | "
                     f"{r['exact_match']:.1f} ({r['exact_match_min']:.1f}-{r['exact_match_max']:.1f}) | "
                     f"{r['cer']:.1f} | {r['harm']:.1f} |")
    return "\n".join(lines)


def pivot(summary: list[dict]) -> str:
    """One row per (task, pairs): exact match % (harm %) of every configuration, mean over seeds."""
    configs = [(i, a) for i in INITS for a in AUGS]
    lines = ["| task | pairs | seeds | " + " | ".join(f"{i}, aug {a}" for i, a in configs) + " |",
             "|---|---:|---:|" + "---:|" * len(configs)]
    cells = {(r["task"], r["pairs"], r["init"], r["aug"]): r for r in summary}
    for task, pairs in dict.fromkeys((r["task"], r["pairs"]) for r in summary):
        row = [cells.get((task, pairs, i, a)) for i, a in configs]
        seeds = min(r["seeds"] for r in row if r)
        lines.append(f"| {task} | {pairs} | {seeds} | " + " | ".join(
            f"{r['exact_match']:.1f} ({r['harm']:.1f})" if r else "" for r in row) + " |")
    return "\n".join(lines)


def verdict(summary: list[dict]) -> str:
    """Mean exact match over tasks per size: the issue's baseline (scratch, no augmentation) against
    augmentation from each starting point, with the gain in points."""
    def mean_of(pairs, init, aug):
        vals = [r["exact_match"] for r in summary if (r["pairs"], r["init"], r["aug"]) == (pairs, init, aug)]
        return statistics.mean(vals) if vals else float("nan")

    lines = ["| pairs | scratch, no augmentation | scratch + augmentation | pretrained + augmentation | "
             "adapted + augmentation |", "|---:|---:|---:|---:|---:|"]
    for pairs in sorted({r["pairs"] for r in summary}):
        base = mean_of(pairs, "scratch", "off")
        cells = [f"{mean_of(pairs, init, 'on'):.1f} ({mean_of(pairs, init, 'on') - base:+.1f})" for init in INITS]
        lines.append(f"| {pairs} | {base:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in summary)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for init in INITS:
            for aug, style in (("on", "-"), ("off", ":")):
                pts = sorted((r["pairs"], r["exact_match"], r["exact_match_min"], r["exact_match_max"])
                             for r in summary if r["task"] == task and r["init"] == init and r["aug"] == aug)
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                line = ax.plot(xs, [p[1] for p in pts], style, marker="o", color=f"C{INITS.index(init)}",
                               label=f"{init}, aug {aug}")[0]
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=line.get_color(), alpha=0.12)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("training pairs")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("exact match % (mean, min-max over seeds)")
    axes[0][-1].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(args) -> None:
    rows = [r for r in load_rows(args.out / "ablation.jsonl") if r["task"] in args.tasks]
    summary = summarize_rows(rows)
    print(table(summary) + "\n\n" + pivot(summary) + "\n\n" + verdict(summary))
    (args.out / "ablation.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    plot(summary, args.out / "ablation.png")
    print(f"\nwrote {args.out / 'ablation.json'} and ablation.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(ABLATION_TASKS), choices=list(TASKS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--adapt-minutes", type=float, default=3.0)
    parser.add_argument("--jobs", type=int, default=2, help="cells trained in parallel (one core each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only print/write the table and plot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
