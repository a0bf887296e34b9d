"""The column benchmark: strseq's defaults on test columns that differ from their training pairs.

    .venv/bin/python benchmarks/column_accuracy.py                          # 7 families, 50/200/1000 pairs, seeds 0 1 2
    .venv/bin/python benchmarks/column_accuracy.py --families dates --sizes 200 --seeds 0
    .venv/bin/python benchmarks/column_accuracy.py --dev                    # development seeds (100 101 102)
    .venv/bin/python benchmarks/column_accuracy.py --compare A.json B.json  # two runs side by side
    .venv/bin/python benchmarks/column_accuracy.py --readme columns.json columns-pretrained-none.json

Each cell (family, pairs, seed) draws a split with ``benchmarks.columns.draw`` (held-out layouts,
long tails, unseen noise, values from the other side of the hash; benchmarks/columns/README.md),
trains through the product path (``learn.build.train_bundle`` with the defaults) and scores the
bundle with the onnxruntime ``Normalizer`` against the identity and nearest-neighbour baselines.
Besides exact match, CER, harm and coverage at 99% precision, every cell reports exact match per
tag (layout seen often / rarely / held out, components, noise, value kind) and its most confident
errors.

Seeds 0, 1 and 2 are the reported test draws; develop on ``--dev`` (seeds 100-102: other layout
rankings, other held-out layouts) and look at the reported draws only to report them.
Writes ``benchmarks/results/columns/<name>.json`` (after every cell, so a stopped run keeps what
it measured) and ``.png``; prints markdown tables. ``--resume`` keeps the cells already in that
file and trains only the missing ones: the reported draws at 1,000 pairs can be added to a file
that holds 50 and 200, or a stopped run finished. ``--resume --redo`` trains the cells named by
``--families``/``--sizes``/``--seeds`` again and keeps the rest: after a change that can only
move some families. Every cell records the commit that measured it (``commit``).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy import (  # noqa: E402
    identity_baseline,
    model_sizes,
    nearest_neighbour_baseline,
    strseq_model,
    train_config,
)
from benchmarks.columns import FAMILIES, draw  # noqa: E402
from strseq_tasks.core.metrics import summarize  # noqa: E402
from strseq_tasks.learn.build import DEFAULT_PRETRAINED  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "columns"
METRICS = ("exact_match", "cer", "harm", "harm_at_threshold", "coverage_at_99", "ece")
TAG_KEYS = ("layout", "components", "noise", "value kind", "clean")
REPORT_SEEDS = (0, 1, 2)
DEV_SEEDS = (100, 101, 102)


def breakdown(tags: list[dict], correct: list[bool], confidence: list[float]) -> dict:
    """Exact match and confident errors (confidence >= 0.9) per value of each tag."""
    out: dict[str, dict] = {}
    for key in TAG_KEYS:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, tag in enumerate(tags):
            value = tag[key].split(":")[0] if key == "noise" else tag[key]
            groups[value].append(i)
        out[key] = {value: {"rows": len(rows), "exact_match": sum(correct[i] for i in rows) / len(rows),
                            "confident_errors": sum(not correct[i] and confidence[i] >= 0.9 for i in rows)}
                    for value, rows in sorted(groups.items())}
    return out


def scored_rows(train, test, seed, epochs, minutes, options):
    """For ``--rows``: what calibration sees, on the validation rows training fitted it on and on
    the test rows (read input, output, log-probability, known-value distance, shape novelty, an
    unseen character, an output treating a word unlike the pairs), so that confidence can be
    studied without training again."""
    from strseq_tasks.core.transduce import transduce
    from strseq_tasks.core.vocab import read_text
    from strseq_tasks.learn.training import split_for_training

    def inspect(served, manifest) -> dict:
        cfg = train_config(seed, epochs, minutes, options)
        val_set = split_for_training(train, cfg, served.max_len)[5]
        out = {"calibration": served.calibration.to_dict(), "shapes": sorted(served.familiar.shapes or ()),
               "input_chars": served.familiar.chars}
        for name, rows in (("validation", val_set), ("test_scored", test)):
            texts = [read_text(a, served.spaces) for a, _ in rows]
            outputs, logprob, distance = transduce(
                texts, served.vocab, served.stepper, served.max_len, identity_margin=served.identity_margin,
                known=served.known or None, known_prior=served.known_prior, spaces=served.spaces)
            flags = served.familiar.flags(texts, outputs)
            novel, unseen, disagree, lost = (flags[k] or [None] * len(texts)
                                             for k in ("novel", "unseen", "disagree", "lost"))
            out[name] = [{"input": t, "target": b, "output": o, "logprob": float(lp), "distance": int(d),
                          "novel": n, "unseen_char": u, "disagree": w, "lost_char": x}
                         for t, (_, b), o, lp, d, n, u, w, x in zip(texts, rows, outputs, logprob, distance, novel,
                                                                    unseen, disagree, lost)]
        return out
    return inspect


def evaluate_cell(family: str, size: int, test_size: int, seed: int, epochs: int, minutes: float | None,
                  options: dict[str, str], pretrained: str | None, rows_dir: Path | None = None) -> list[dict]:
    logging.basicConfig(level=logging.WARNING)
    split = draw(FAMILIES[family](), size, test_size, seed)
    train, test = split.train, split.test
    inputs, targets = [a for a, _ in test], [b for _, b in test]
    methods = {
        "identity": identity_baseline(train, test) + ({},),
        "nearest-neighbour": nearest_neighbour_baseline(train, test) + ({},),
        "strseq": strseq_model(train, test, train_config(seed, epochs, minutes, options), pretrained,
                               sizes=model_sizes(options),
                               inspect=None if rows_dir is None else scored_rows(train, test, seed, epochs, minutes,
                                                                                 options)),
    }
    scored = methods["strseq"][2].pop("inspect", None)
    rows = []
    for method, (outputs, confidence, extra) in methods.items():
        metrics = summarize(inputs, targets, outputs, confidence)
        correct = [o == t for o, t in zip(outputs, targets)]
        row = {"family": family, "pairs": size, "seed": seed, "method": method,
               **{k: metrics[k] for k in METRICS}, **extra,
               "breakdown": breakdown(split.tags, correct, confidence)}
        if method == "strseq":
            wrong = sorted((i for i, ok in enumerate(correct) if not ok), key=lambda i: -confidence[i])[:12]
            row["confident_errors"] = [{"input": inputs[i], "target": targets[i], "output": outputs[i],
                                        "confidence": round(confidence[i], 4), **split.tags[i]} for i in wrong]
            row["held_out_layouts"] = sorted(n for n, p in split.layouts.items() if p["held_out"])
            if rows_dir is not None:  # every row, for analysis (not part of the results file)
                rows_dir.mkdir(parents=True, exist_ok=True)
                (rows_dir / f"{family}-{size}-s{seed}.json").write_text(json.dumps({
                    "commit": code_version(),
                    "train": train, "test": [{"input": a, "target": b, "output": o, "confidence": round(c, 6), **t}
                                             for a, b, o, c, t in zip(inputs, targets, outputs, confidence,
                                                                      split.tags)],
                    **scored}, ensure_ascii=False))
        rows.append(row)
    return rows


def run(families, sizes, seeds, test_size, epochs, minutes, jobs, options, pretrained, rows_dir=None,
        done: dict[tuple, list[dict]] | None = None, on_cell=None) -> list[dict]:
    """Every (family, pairs, seed) cell's rows; cells in ``done`` are not trained again, and
    ``on_cell(cell, rows)`` runs as each new cell ends (to save it before the next one)."""
    results: dict[tuple, list[dict]] = dict(done or {})
    cells = sorted(((f, n, s) for f in families for n in sizes for s in seeds if (f, n, s) not in results),
                   key=lambda c: -c[1])
    if results:
        print(f"reusing {sum((f, n, s) in results for f in families for n in sizes for s in seeds)} cells "
              f"already measured; training {len(cells)}", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(evaluate_cell, f, n, test_size, s, epochs, minutes, options, pretrained,
                               rows_dir): (f, n, s)
                   for f, n, s in cells}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                results[cell] = future.result()
            except Exception as exc:  # one failed cell must not lose the others
                print(f"| {cell} | FAILED: {exc!r} |", flush=True)
                continue
            if on_cell is not None:
                on_cell(cell, results[cell])
            for row in results[cell]:
                if row["method"] == "strseq":
                    print(f"| {row['family']} | {row['pairs']} | seed {row['seed']} | "
                          f"{100 * row['exact_match']:.1f} | harm {100 * row['harm']:.1f} "
                          f"(at 0.9: {100 * row['harm_at_threshold']:.1f}) | "
                          f"cov99 {100 * row['coverage_at_99']:.1f} "
                          f"(model alone: {100 * row.get('coverage_at_99_model_alone', float('nan')):.1f}) | "
                          f"{row.get('train_seconds', 0):.0f} s |",
                          flush=True)
    return [row for f in families for n in sorted(sizes) for s in seeds for row in results.get((f, n, s), [])]


# what makes two runs' cells comparable
SAME_RUN = ("test_size", "epochs", "max_minutes", "set", "pretrained", "pretrained_sha256")


def pretrained_sha256(pretrained: str | None) -> str | None:
    """The manifest checksum of the model training starts from (a rebuilt model is another run)."""
    if pretrained is None:
        return None
    from strseq_tasks.learn.build import DEFAULT_LM
    from strseq_tasks.learn.transfer import default_pretrained_path

    manifest = (default_pretrained_path() if pretrained == DEFAULT_LM else Path(pretrained)) / "manifest.json"
    return json.loads(manifest.read_text()).get("manifest_sha256") if manifest.exists() else None


def code_version() -> str:
    """The benchmark checkout's commit, with ``+changes`` when its files differ from it (results
    files aside: a run beside this one writes its own as it goes)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def earlier_cells(path: Path, args: dict, same_run: tuple[str, ...] = SAME_RUN,
                  size: str = "pairs") -> dict[tuple, list[dict]]:
    """The cells of an earlier run's results file, by (family, ``size``, seed), if it was run with
    the same options (``same_run``; ``--resume``); a file from other options is an error, not a
    silent mix."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    differ = [k for k in same_run if earlier["args"].get(k) != args.get(k)]
    if differ:
        print(f"error: {path} was run with other options ({', '.join(differ)}); "
              "give another --name or leave out --resume", file=sys.stderr)
        raise SystemExit(2)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for row in earlier["rows"]:
        cells[(row["family"], row[size], row["seed"])].append(row)
    return dict(cells)


def write_results(path: Path, args: dict, cells: dict[tuple, list[dict]]) -> None:
    """Every cell measured so far, in a stable order; written whole to a temporary file and renamed,
    so a run stopped at any point leaves the last complete file."""
    order = {f: i for i, f in enumerate(FAMILIES)}
    rows = [row for key in sorted(cells, key=lambda c: (order[c[0]], c[1], c[2])) for row in cells[key]]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"args": args, "rows": rows}, indent=2, default=str))
    tmp.replace(path)


def _mean_spread(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ({100 * min(values):.1f}-{100 * max(values):.1f})"


def summary_table(rows: list[dict]) -> str:
    """Mean (min-max over seeds) per family, pairs and method."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["family"], r["pairs"], r["method"])].append(r)
    lines = ["| family | pairs | method | seeds | exact match % | harm % | harm at 0.9 % | coverage at 99% precision % "
             "| CER % |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (family, pairs, method), group in groups.items():
        # harm at 0.9: the harm a cleaning job at its default threshold does (cells from before it: n/a)
        cells = [_mean_spread([r.get(k, float("nan")) for r in group])
                 for k in ("exact_match", "harm", "harm_at_threshold", "coverage_at_99", "cer")]
        lines.append(f"| {family} | {pairs} | {method} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown_table(rows: list[dict], method: str = "strseq") -> str:
    """strseq's exact match per tag value, pooled over seeds, per family and pairs."""
    pooled: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r["method"] != method:
            continue
        for key, values in r["breakdown"].items():
            for value, cell in values.items():
                acc = pooled[(r["family"], r["pairs"], key, value)]
                acc[0] += cell["rows"]
                acc[1] += round(cell["exact_match"] * cell["rows"])
                acc[2] += cell["confident_errors"]
    lines = ["| family | pairs | tag | value | rows | exact match % | wrong at confidence >= 0.9 |",
             "|---|---:|---|---|---:|---:|---:|"]
    for (family, pairs, key, value), (n, right, confident) in sorted(pooled.items()):
        lines.append(f"| {family} | {pairs} | {key} | {value} | {n} | {100 * right / n:.1f} | {confident} |")
    return "\n".join(lines)


def compare(paths: list[Path]) -> str:
    """strseq's mean exact match, harm and coverage at 99% precision per family and pairs in each
    results file, and each file's change against the first (points)."""
    runs = [json.loads(p.read_text()) for p in paths]
    cells: dict[tuple, list[list[dict]]] = defaultdict(lambda: [[] for _ in runs])
    for i, run in enumerate(runs):
        for r in run["rows"]:
            if r["method"] == "strseq":
                cells[(r["family"], r["pairs"])][i].append(r)
    names = [p.stem for p in paths]
    head = "| family | pairs | " + " | ".join(f"{n}: exact / harm / cov99" for n in names) + " |"
    lines = [head, "|---|---:|" + "---|" * len(names)]
    for (family, pairs), groups in sorted(cells.items()):
        base = None
        out = []
        for group in groups:
            if not group:
                out.append("n/a")
                continue
            em, harm, cov = (100 * statistics.fmean(r[k] for r in group)
                             for k in ("exact_match", "harm", "coverage_at_99"))
            delta = "" if base is None else f" ({em - base:+.1f})"
            base = em if base is None else base
            out.append(f"{em:.1f}{delta} / {harm:.1f} / {cov:.1f}")
        lines.append(f"| {family} | {pairs} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def readme_table(default: Path, scratch: Path, sizes: tuple[int, ...] = (50, 200, 1000)) -> str:
    """The README's accuracy table: the default's exact match (mean, min-max), from scratch, and
    the default's harm (of every output, and of those at confidence 0.9 or more: what a cleaning job
    at its default threshold writes) and coverage at 99% precision, per family and pairs."""
    def means(path: Path) -> dict[tuple, list[dict]]:
        cells: dict[tuple, list[dict]] = defaultdict(list)
        for r in json.loads(path.read_text())["rows"]:
            if r["method"] == "strseq" and r["pairs"] in sizes:
                cells[(r["family"], r["pairs"])].append(r)
        return cells

    ours, theirs = means(default), means(scratch)
    lines = ["| family | pairs | exact match % | scratch % | harm % | harm at 0.9 % | coverage at 99% precision % |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    overall: dict[int, list[list[float]]] = defaultdict(lambda: [[], []])
    for family in FAMILIES:
        for n in sizes:
            group, other = ours.get((family, n)), theirs.get((family, n))
            if not group:
                continue
            em = [100 * r["exact_match"] for r in group]
            other_em = statistics.fmean(100 * r["exact_match"] for r in other) if other else float("nan")
            overall[n][0].append(statistics.fmean(em))
            overall[n][1].append(other_em)
            harm, applied, cov = (_mean(group, k) for k in ("harm", "harm_at_threshold", "coverage_at_99"))
            label = family.replace("_", " ")
            lines.append(f"| {label} | {n} | {statistics.fmean(em):.1f} ({min(em):.1f}-{max(em):.1f}) "
                         f"| {_or_na(other_em)} | {harm} | {applied} | {cov} |")
    for n, (em, other) in sorted(overall.items()):
        mean_other = _or_na(statistics.fmean(other))
        lines.append(f"| **mean of {len(em)}** | {n} | **{statistics.fmean(em):.1f}** | {mean_other} | | | |")
    return "\n".join(lines)


def _or_na(value: float) -> str:
    """A mean, or "n/a" where a cell was not measured (NaN)."""
    return f"{value:.1f}" if value == value else "n/a"


def _mean(group: list[dict], key: str) -> str:
    values = [r.get(key, float("nan")) for r in group]
    values = [v for v in values if v == v]
    return f"{100 * statistics.fmean(values):.1f}" if values else "n/a"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in FAMILIES if any(r["family"] == f for r in rows)]
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.4), squeeze=False)
    for ax, family in zip(axes[0], families):
        for method in ("strseq", "nearest-neighbour", "identity"):
            by_size: dict[int, list[float]] = defaultdict(list)
            for r in rows:
                if r["family"] == family and r["method"] == method:
                    by_size[r["pairs"]].append(r["exact_match"])
            if by_size:
                sizes = sorted(by_size)
                ax.errorbar(sizes, [100 * statistics.fmean(by_size[s]) for s in sizes],
                            yerr=[[100 * (statistics.fmean(by_size[s]) - min(by_size[s])) for s in sizes],
                                  [100 * (max(by_size[s]) - statistics.fmean(by_size[s])) for s in sizes]],
                            marker="o", label=method, capsize=3)
        ax.set_xscale("log")
        ax.set_title(family)
        ax.set_xlabel("training pairs")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("exact match % (test column)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200, 1000])
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 (--dev: 100 101 102)")
    parser.add_argument("--dev", action="store_true",
                        help="the development draws (seeds 100-102), not the reported ones")
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (the train default)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="cells trained in parallel (one core each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field or a model size, as in benchmarks/accuracy.py")
    parser.add_argument("--pretrained", default=None,
                        help="`default`, `none` (from scratch), a pretrained model or an LM folder "
                             "(default: the train default)")
    parser.add_argument("--name", default=None, help="results file name (default: from the options)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rows", type=Path, default=None, metavar="DIR",
                        help="also write every test row (input, target, output, confidence, tags) per cell here")
    parser.add_argument("--redo", action="store_true",
                        help="with --resume: train the cells named by --families/--sizes/--seeds again even where "
                             "the file has them (after a change that can only move those)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells already in the results file (same options) and train only the others")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="JSON", help="only compare these results files")
    parser.add_argument("--readme", nargs=2, type=Path, metavar=("DEFAULT", "SCRATCH"),
                        help="only print the README's accuracy table from these two results files")
    args = parser.parse_args()
    if args.readme:
        print(readme_table(*args.readme))
        return
    if args.compare:
        print(compare(args.compare))
        return
    logging.basicConfig(level=logging.WARNING)
    seeds = args.seeds or list(DEV_SEEDS if args.dev else REPORT_SEEDS)
    options = dict(item.split("=", 1) for item in args.set)
    train_config(0, args.epochs, args.max_minutes, options)  # fail fast on a bad --set
    model_sizes(options)
    # what training starts from: the train default unless told (`none`: from scratch)
    pretrained = {None: DEFAULT_PRETRAINED, "none": None}.get(args.pretrained, args.pretrained)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or ("dev" if args.dev else "columns") + "".join(
        f"-{k}={v}" for k, v in sorted(options.items())).replace("/", "_") + (
        f"-pretrained-{Path(args.pretrained).name}" if args.pretrained else "")
    path = args.out / f"{name}.json"
    meta = json.loads(json.dumps(vars(args) | {"out": str(args.out), "seeds": seeds,
                                                "pretrained_sha256": pretrained_sha256(pretrained)}, default=str))
    cells = earlier_cells(path, meta) if args.resume else {}
    if args.redo:
        cells = {c: rows for c, rows in cells.items() if not (c[0] in args.families and c[1] in args.sizes
                                                               and c[2] in seeds)}
    commit = code_version()
    meta["seeds"] = sorted({s for _, _, s in cells} | set(seeds))
    meta["sizes"] = sorted({n for _, n, _ in cells} | set(args.sizes))
    meta["families"] = [f for f in FAMILIES if f in {c[0] for c in cells} | set(args.families)]

    def save(cell, rows):
        cells[cell] = [row | {"commit": commit} for row in rows]  # which code measured the cell
        write_results(path, meta, cells)

    run(args.families, args.sizes, seeds, args.test_size, args.epochs, args.max_minutes, args.jobs, options,
        pretrained, args.rows, done=cells, on_cell=save)
    write_results(path, meta, cells)
    rows = json.loads(path.read_text())["rows"]
    print("\n" + summary_table(rows))
    print("\n" + breakdown_table(rows))
    plot(rows, args.out / f"{name}.png")
    print(f"\nwrote {path} and {name}.png ({len(cells)} cells)")


if __name__ == "__main__":
    main()
