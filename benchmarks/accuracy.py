"""Learning curves: strseq vs the identity and nearest-neighbour baselines on five tasks.

Tasks with a list of valid values (``tasks.KNOWN_VALUES``: typos and misspellings, whose
dictionary is the word list) also get ``strseq+known`` (trained and decoding with that list, see
``strseq_tasks.core.known``) and the ``known-nearest`` baseline (the nearest value of the list by
edit distance, most frequent first on ties; the input where none is within 2 edits).

    .venv/bin/python benchmarks/accuracy.py                       # all tasks, 50/200/1000 pairs
    .venv/bin/python benchmarks/accuracy.py --tasks dates --sizes 200

Each run trains through the product path (``learn.build.train_bundle``: augmentation, early
stopping, ONNX export) and scores the bundle with the onnxruntime ``Normalizer`` on a test set
whose targets never occur in training. Prints a markdown table and writes
``benchmarks/results/accuracy.json`` and ``accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz import process  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from benchmarks.tasks import KNOWN_VALUES, TASKS  # noqa: E402
from strseq_tasks.core.metrics import coverage_at_precision, summarize  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("exact_match", "cer", "harm", "coverage_at_99")


def identity_baseline(train, test):
    inputs = [a for a, _ in test]
    return inputs, [1.0] * len(inputs)


def nearest_neighbour_baseline(train, test):
    """The target of the most similar training input (normalized Levenshtein similarity)."""
    lookup = [a for a, _ in train]
    targets = [b for _, b in train]
    outputs, confidence = [], []
    for src, _ in test:
        _, score, index = process.extractOne(src, lookup, scorer=Levenshtein.normalized_similarity)
        outputs.append(targets[index])
        confidence.append(float(score))
    return outputs, confidence


def known_nearest_baseline(known, test):
    """The nearest known value (list order on ties), else the input; confidence 1 - distance / 3."""
    outputs, confidence = [], []
    for src, _ in test:
        near = known.near(src)
        outputs.append(near.values[0] if near else src)
        confidence.append(1.0 - (near.distance if near else known.max_distance + 1) / (known.max_distance + 1))
    return outputs, confidence


def train_config(seed: int, epochs: int, minutes: float | None, options: dict[str, str]):
    """TrainConfig with ``--set`` overrides: ``unk_rate=0``, ``augment.digit_copies=0``, ..."""
    from dataclasses import fields, replace

    from strseq_tasks.learn.training import TrainConfig

    cfg = TrainConfig(seed=seed, max_epochs=epochs, max_minutes=minutes)
    for key, raw in options.items():
        if key.startswith("model."):
            continue  # model sizes: see model_sizes
        target_name, _, field = key.rpartition(".")
        target = cfg.augment if target_name == "augment" else cfg
        kinds = {f.name: f.type for f in fields(target)}
        if field not in kinds:
            raise SystemExit(f"--set {key}: no such option (choose from {', '.join(kinds)})")
        value = type(getattr(target, field))(raw) if getattr(target, field) is not None else float(raw)
        updated = replace(target, **{field: value})
        cfg = replace(cfg, augment=updated) if target_name == "augment" else updated
    return cfg


def model_sizes(options: dict[str, str]) -> dict[str, int] | None:
    """``--set model.dec_hidden=128`` ...: ModelConfig sizes other than the defaults."""
    from dataclasses import fields

    from strseq_tasks.learn.model import ModelConfig

    sizes = {k.removeprefix("model."): raw for k, raw in options.items() if k.startswith("model.")}
    known = {f.name for f in fields(ModelConfig) if f.name != "vocab_size"}
    for key in sizes:
        if key not in known:
            raise SystemExit(f"--set model.{key}: no such model option (choose from {', '.join(sorted(known))})")
    return {k: (float(v) if "dropout" in k else int(v)) for k, v in sizes.items()} or None


def strseq_model(train, test, cfg, pretrained: str | None, known=None, sizes: dict | None = None, inspect=None):
    """Train with the product path and predict ``test`` with the served bundle: (outputs,
    confidences, extra figures). ``inspect(normalizer, manifest)``, if given, runs while the
    bundle exists; what it returns is ``extra["inspect"]``."""
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.serve.runtime import Normalizer

    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        outcome = train_bundle(train, Path(tmp) / "model", cfg, sizes, pretrained=pretrained, known=known)
        seconds = time.monotonic() - started
        precision = outcome.manifest["precision"]
        served = Normalizer(outcome.path)  # what strseq serves: int8 when it passed the int8 gate
        predictions = served.normalize([a for a, _ in test])
        fp32 = Normalizer(outcome.path, precision="fp32").normalize([a for a, _ in test])
        # the model alone, without layout programs: a program row's confidence is its shape's, not its own
        alone = Normalizer(outcome.path, programs=False).normalize([a for a, _ in test])
        inspected = inspect(served, outcome.manifest) if inspect is not None else None
    extra = {"train_seconds": round(seconds, 1), "epochs": outcome.manifest["training"]["epochs"],
             "best_epoch": outcome.manifest["training"]["best_epoch"], "precision": served.precision,
             "int8_gate": (precision.get("int8") or {}).get("gate") or precision.get("int8_refused"),
             "exact_match_fp32": sum(p.text == t for p, (_, t) in zip(fp32, test)) / len(test),
             "changed_vs_fp32": sum(a.text != b.text for a, b in zip(predictions, fp32)),
             "changed_vs_model_alone": sum(a.text != b.text for a, b in zip(predictions, alone)),
             "coverage_at_99_model_alone": coverage_at_precision(
                 [p.text == t for p, (_, t) in zip(alone, test)], [p.confidence for p in alone], 0.99)}
    if inspect is not None:
        extra["inspect"] = inspected
    return [p.text for p in predictions], [p.confidence for p in predictions], extra


def evaluate_cell(task: str, size: int, test_size: int, seed: int, epochs: int, minutes: float | None,
                  options: dict[str, str], pretrained: str | None) -> list[dict]:
    """Every method on one (task, training size) cell."""
    logging.basicConfig(level=logging.WARNING)
    train, test = TASKS[task](size, test_size, seed)
    inputs, targets = [a for a, _ in test], [b for _, b in test]
    methods = {
        "identity": identity_baseline(train, test) + ({},),
        "nearest-neighbour": nearest_neighbour_baseline(train, test) + ({},),
        "strseq": strseq_model(train, test, train_config(seed, epochs, minutes, options), pretrained,
                               sizes=model_sizes(options)),
    }
    if task in KNOWN_VALUES:
        from strseq_tasks.core.known import KnownValues

        known = KnownValues(KNOWN_VALUES[task]())
        from rapidfuzz.distance import OSA

        # the share of test rows a known-values decoder can get right at all
        reach = sum(OSA.distance(a, b) <= known.max_distance for a, b in test) / len(test)
        methods["known-nearest"] = known_nearest_baseline(known, test) + ({"target_within_reach": reach},)
        methods["strseq+known"] = strseq_model(train, test, train_config(seed, epochs, minutes, options),
                                               pretrained, known=KnownValues([*known.values, *(b for _, b in train)]),
                                               sizes=model_sizes(options))
    rows = []
    for method, (outputs, confidence, extra) in methods.items():
        metrics = summarize(inputs, targets, outputs, confidence)
        rows.append({"task": task, "pairs": size, "method": method, **{k: metrics[k] for k in COLUMNS}, **extra})
    return rows


def run(tasks, sizes, test_size: int, seed: int, epochs: int, minutes: float | None, jobs: int,
        options: dict[str, str], pretrained: str | None) -> list[dict]:
    """All cells, ``jobs`` at a time (one single-threaded process each), largest first."""
    cells = sorted(((t, n) for t in tasks for n in sizes), key=lambda c: -c[1])
    results: dict[tuple[str, int], list[dict]] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(evaluate_cell, t, n, test_size, seed, epochs, minutes, options, pretrained): (t, n)
                   for t, n in cells}
        for future in as_completed(futures):
            task, size = futures[future]
            try:
                results[(task, size)] = future.result()
            except Exception as exc:  # one failed cell must not lose the others
                print(f"| {task} | {size} | FAILED: {exc!r} |", flush=True)
                results[(task, size)] = []
            for row in results[(task, size)]:
                print(_line(row), flush=True)
    return [row for t in tasks for n in sorted(sizes) for row in results[(t, n)]]


def _fmt(value) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}"  # NaN check


def _line(row: dict) -> str:
    extra = f"{row['train_seconds']:.0f} s" if "train_seconds" in row else ""
    return (f"| {row['task']} | {row['pairs']} | {row['method']} | {_fmt(row['exact_match'])} | "
            f"{_fmt(row['cer'])} | {_fmt(row['harm'])} | {_fmt(row['coverage_at_99'])} | {extra} |")


def int8_table(rows: list[dict]) -> str:
    """What serving int8 changed: exact match of the served graphs against fp32's, per cell."""
    lines = ["| task | pairs | method | serves | exact match % | fp32 exact match % | change (points) | "
             "outputs changed |", "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "exact_match_fp32" in r:
            lines.append(f"| {r['task']} | {r['pairs']} | {r['method']} | {r['precision']} | "
                         f"{100 * r['exact_match']:.2f} | {100 * r['exact_match_fp32']:.2f} | "
                         f"{100 * (r['exact_match'] - r['exact_match_fp32']):+.2f} | {r['changed_vs_fp32']} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = ("| task | pairs | method | exact match % | CER % | harm % | coverage at 99% precision % | train time |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|")
    return "\n".join([head] + [_line(r) for r in rows])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows}, key=list(TASKS).index)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in ("strseq", "strseq+known", "known-nearest", "nearest-neighbour", "identity"):
            pts = sorted((r["pairs"], r["exact_match"]) for r in rows if r["task"] == task and r["method"] == method)
            if not pts:
                continue
            ax.plot([p for p, _ in pts], [100 * e for _, e in pts], marker="o", label=method)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("training pairs")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("exact match % (unseen targets)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200, 1000])
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (the train default)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="cells trained in parallel (one core each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field for an ablation, e.g. unk_rate=0, "
                             "augment.digit_copies=0, augment.policy=none, or a model size: "
                             "model.dec_hidden=128 (repeatable)")
    parser.add_argument("--pretrained", default=None,
                        help="what training starts from: `default` (the shipped pretrained model), `none` "
                             "(random weights), a pretrained model or an LM folder (default: the train default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(table([]))
    options = dict(item.split("=", 1) for item in args.set)
    train_config(args.seed, args.epochs, args.max_minutes, options)  # fail fast on a bad --set
    model_sizes(options)
    from strseq_tasks.learn.build import DEFAULT_PRETRAINED

    pretrained = {None: DEFAULT_PRETRAINED, "none": None}.get(args.pretrained, args.pretrained)
    rows = run(args.tasks, args.sizes, args.test_size, args.seed, args.epochs, args.max_minutes, args.jobs, options,
               pretrained)
    print("\n" + table(rows))
    print("\n" + int8_table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    name = "accuracy" if set(args.tasks) == set(TASKS) else "accuracy-" + "-".join(args.tasks)
    if options:
        name += "-" + "-".join(f"{k}={v}" for k, v in sorted(options.items())).replace("/", "_")
    if args.pretrained:
        name += "-pretrained-" + Path(args.pretrained).name
    (args.out / f"{name}.json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows},
                                                      indent=2))
    plot(rows, args.out / f"{name}.png")
    print(f"\nwrote {args.out / (name + '.json')} and {name}.png")


if __name__ == "__main__":
    main()
