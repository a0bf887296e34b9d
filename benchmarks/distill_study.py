"""Distillation study (issue 24): does a smaller student trained on its teacher's outputs keep the
teacher's accuracy, and how much faster does it clean?

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/distill_study.py --columns dates names \\
        --sizes dec128 --teachers /work/models24 --students /tmp/strseq-distill \\
        --out benchmarks/results/distill/dates-names-dec128.json
    # then, only timing the distilled students already trained (no training), longer:
    ... distill_study.py --columns dates names --sizes dec128 --students /tmp/strseq-distill --time-only \
        --repeats 9 --out benchmarks/results/distill/timing.json

For each column, the realistic column's 20,000-row pool (``benchmarks/realistic.py``: ``draw(FAMILIES[name](),
200, 20000, seed=0)``) is split by a hash of the input: half A gives the student its unlabeled inputs
(``--inputs`` of them, chosen by another hash), half B is held out and never seen by a student. The
teacher is the bundle in ``--teachers/<column>``, trained with the defaults on the column's 200 pairs.
For each student size (``SIZES``) two students are trained, one thread:

- ``pairs``: that size on the 200 pairs alone (from random weights), the baseline a smaller model
  had before (docs/benchmarks.md, "Cleaning throughput": dec_hidden 128 lost 2.2 points on names);
- ``distilled``: ``strseq_tasks.learn.distill.distill``, the 200 pairs plus the teacher's labels.

Measured, per column and model, with layout programs off: exact match and harm (clean rows changed)
on half B against the truth, agreement with the teacher on half B, validation exact match on the
teacher's validation rows (the rule: a student serves only within 0.2 points of its teacher), the
student's training time, rows/s on 2,000 distinct half-B values (one thread, teacher and students
interleaved, median of ``--repeats``) and MFLOP per row (``model_cost.model_work``). Also how right
the teacher's labels of half A were, above and below the confidence floor. Writes JSON to ``--out``
after each column. Timings on the shared 2-core machines are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.columns import FAMILIES, draw
from benchmarks.model_cost import model_work
from strseq_tasks.learn.build import train_bundle
from strseq_tasks.learn.distill import MIN_CONFIDENCE, distill
from strseq_tasks.learn.training import TrainConfig, hash_unit
from strseq_tasks.serve.runtime import Normalizer

ROOT = Path(__file__).resolve().parents[1]

Pair = tuple[str, str]
POOL, N_TRAIN = 20_000, 200
HALF_SEED, PICK_SEED = 24, 2424  # hash seeds: which half a pool row is in; which half-A inputs are labelled
SIZES = {  # ModelConfig overrides of each student size
    "dec128": {"dec_hidden": 128},  # docs/benchmarks.md's smaller model: 3.1x cheaper per decoder step
    "small": {"emb_dim": 32, "enc_hidden": 64, "dec_hidden": 128, "attn_dim": 64},
}


def halves(pool: list[Pair]) -> tuple[list[Pair], list[Pair]]:
    """The pool split by a hash of the input: half A (the students' inputs) and half B (held out)."""
    a = [p for p in pool if hash_unit(p[0], HALF_SEED) < 0.5]
    b = [p for p in pool if hash_unit(p[0], HALF_SEED) >= 0.5]
    return a, b


def pick_inputs(half_a: list[Pair], n: int) -> list[Pair]:
    """``n`` distinct half-A rows, in an order decided by a hash (an unweighted sample of the pool)."""
    rows = list({a: (a, t) for a, t in half_a}.values())
    return sorted(rows, key=lambda p: hash_unit(p[0], PICK_SEED))[:n]


def outputs_of(model: Normalizer, inputs: list[str]) -> list[str]:
    return [p.text for p in model.normalize(inputs)]


def scores(rows: list[Pair], outputs: list[str], teacher: list[str]) -> dict:
    """Exact match, harm (clean rows changed) and agreement with the teacher's outputs."""
    clean = [i for i, (a, t) in enumerate(rows) if a == t]
    return {"rows": len(rows), "exact": round(sum(o == t for o, (_, t) in zip(outputs, rows)) / len(rows), 5),
            "clean_rows": len(clean), "harmed": sum(outputs[i] != rows[i][0] for i in clean),
            "harm": round(sum(outputs[i] != rows[i][0] for i in clean) / max(len(clean), 1), 5),
            "agree_teacher": round(sum(o == t for o, t in zip(outputs, teacher)) / len(rows), 5)}


def label_quality(teacher: Normalizer, picked: list[Pair], floor: float) -> dict:
    """How often the teacher's labels of the picked half-A inputs are right, above and below ``floor``."""
    predictions = teacher.normalize([a for a, _ in picked])
    kept = [p.text == t for p, (_, t) in zip(predictions, picked) if p.confidence >= floor]
    dropped = [p.text == t for p, (_, t) in zip(predictions, picked) if p.confidence < floor]
    return {"inputs": len(picked), "kept": len(kept), "kept_exact": round(sum(kept) / max(len(kept), 1), 4),
            "dropped": len(dropped), "dropped_exact": round(sum(dropped) / max(len(dropped), 1), 4)}


def rates(models: dict[str, Normalizer], values: list[str], repeats: int) -> dict:
    """Rows/s of each model on ``values``, runs interleaved (a, b, c, a, b, c, ...), median of ``repeats``."""
    for model in models.values():
        model.normalize(values[:64])  # warm up
    seen: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            started = time.perf_counter()
            model.normalize(values)
            seen[name].append(len(values) / (time.perf_counter() - started))
    return {name: {"rows_per_s": round(statistics.median(r), 1), "runs": [round(x, 1) for x in r]}
            for name, r in seen.items()}


def train_students(name: str, size: str, split, picked: list[Pair], args) -> dict:
    """The size's two students (pairs alone, distilled): folders, training seconds, validation."""
    sizes, folder = SIZES[size], Path(args.students) / name / size
    found = {}
    if not args.skip_pairs:
        started = time.monotonic()
        out = train_bundle(split.train, folder / "pairs", TrainConfig(seed=0, max_minutes=args.minutes), sizes,
                           overwrite=True, pretrained=None)
        found["pairs"] = {"path": str(out.path), "train_seconds": round(time.monotonic() - started, 1),
                          "epochs": out.manifest["training"]["epochs"],
                          "manifest_val_exact": out.manifest["metrics"]["validation"]["exact_match"]}
    started = time.monotonic()
    cfg = TrainConfig(seed=0, max_epochs=args.max_epochs, max_minutes=args.minutes)
    outcome = distill(Path(args.teachers) / name, [a for a, _ in picked], split.train, sizes, cfg,
                      folder / "distilled", min_confidence=args.min_confidence, overwrite=True)
    found["distilled"] = {**outcome.to_dict(), "train_seconds": round(time.monotonic() - started, 1),
                          "epochs": outcome.manifest["training"]["epochs"],
                          "stopped": outcome.manifest["training"]["stopped"],
                          "manifest_val_exact": outcome.manifest["metrics"]["validation"]["exact_match"]}
    return found


def study_column(name: str, args) -> dict:
    split = draw(FAMILIES[name](), n_train=N_TRAIN, n_test=POOL, seed=0)
    half_a, half_b = halves(split.test)
    picked = pick_inputs(half_a, args.inputs)
    teacher = Normalizer(Path(args.teachers) / name, threads=1, programs=False)
    record = {"pool": len(split.test), "half_a": len(half_a), "half_b": len(half_b), "picked": len(picked),
              "teacher": {"path": str(teacher.path), "precision": teacher.precision,
                          "model_config": teacher.manifest["model_config"],
                          "train_seconds": teacher.manifest["training"]["seconds"]},
              "labels": label_quality(teacher, picked, args.min_confidence), "sizes": {}}
    inputs_b = [a for a, _ in half_b]
    teacher_b = outputs_of(teacher, inputs_b)
    record["teacher"]["half_b"] = scores(half_b, teacher_b, teacher_b)
    models = {"teacher": teacher}
    for size in args.sizes:
        students = train_students(name, size, split, picked, args)
        for kind, info in students.items():
            model = Normalizer(info["path"], threads=1, programs=False)
            info["precision"] = model.precision
            info["model_config"] = {k: model.manifest["model_config"][k] for k in SIZES["small"]}
            info["half_b"] = scores(half_b, outputs_of(model, inputs_b), teacher_b)
            if kind == "distilled":
                models[f"{size}-distilled"] = model
        record["sizes"][size] = students
        print(f"{name} {size}: " + json.dumps({k: v["half_b"] for k, v in students.items()}), flush=True)
    timed = list(dict.fromkeys(inputs_b))[: args.timing_rows]
    record["timing"] = {"rows": len(timed), "repeats": args.repeats, **rates(models, timed, args.repeats)}
    for label, model in models.items():
        record["timing"][label]["work"] = model_work(model, timed)
    return record


def time_only(name: str, args) -> dict:
    """Rows/s and MFLOP per row of the teacher and the distilled students already in ``--students``
    (``--time-only``: a longer timing than the study's, the same rows)."""
    split = draw(FAMILIES[name](), n_train=N_TRAIN, n_test=POOL, seed=0)
    timed = list(dict.fromkeys(a for a, _ in halves(split.test)[1]))[: args.timing_rows]
    models = {"teacher": Normalizer(Path(args.teachers) / name, threads=1, programs=False)}
    for size in args.sizes:
        folder = Path(args.students) / name / size / "distilled"
        if folder.is_dir():
            models[f"{size}-distilled"] = Normalizer(folder, threads=1, programs=False)
    found = {"rows": len(timed), "repeats": args.repeats, **rates(models, timed, args.repeats)}
    for label, model in models.items():
        found[label]["work"] = model_work(model, timed)
        found[label]["precision"] = model.precision
    return found


def table(results: dict) -> str:
    lines = ["| column | model | half B exact | harm | agree teacher | val exact (teacher) | check agree | accepted | "
             "train s | rows/s | MFLOP/row |", "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, rec in results.items():
        t, timing = rec["teacher"], rec["timing"]
        lines.append(f"| {name} | teacher | {100 * t['half_b']['exact']:.2f} | {100 * t['half_b']['harm']:.2f} | "
                     f"100 | | | | {t['train_seconds']} | {timing['teacher']['rows_per_s']} | "
                     f"{timing['teacher']['work']['mflop_per_row']} |")
        for size, students in rec["sizes"].items():
            for kind, s in students.items():
                speed = timing.get(f"{size}-{kind}", {})
                val = (f"{100 * s['student_exact']:.2f} ({100 * s['teacher_exact']:.2f})"
                       if "student_exact" in s else f"{100 * s['manifest_val_exact']:.2f} (torch)")
                check = f"{100 * s['agreement']:.2f} of {s['check_rows']}" if s.get("check_rows") else ""
                lines.append(f"| {name} | {size} {kind} | {100 * s['half_b']['exact']:.2f} | "
                             f"{100 * s['half_b']['harm']:.2f} | {100 * s['half_b']['agree_teacher']:.2f} | {val} | "
                             f"{check} | {s.get('accepted', '')} | {s['train_seconds']} | "
                             f"{speed.get('rows_per_s', '')} | {speed.get('work', {}).get('mflop_per_row', '')} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", nargs="+", default=["dates", "names"], choices=sorted(FAMILIES))
    parser.add_argument("--sizes", nargs="+", default=["dec128"], choices=sorted(SIZES))
    parser.add_argument("--teachers", default="/work/models24", help="folder of the teachers, one per column")
    parser.add_argument("--students", required=True, help="folder to write the students into")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--inputs", type=int, default=600, help="half-A inputs the teacher labels")
    parser.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE)
    parser.add_argument("--max-epochs", type=int, default=15, help="the distilled student's epochs (cosine schedule)")
    parser.add_argument("--minutes", type=float, default=4.0, help="each student's training budget")
    parser.add_argument("--skip-pairs", action="store_true", help="no pairs-only baseline student")
    parser.add_argument("--timing-rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-only", action="store_true", help="only time the teacher and the distilled "
                        "students already in --students (no training)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    meta = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "commit": commit.stdout.strip(),
            "args": vars(args), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "note": "timings on a shared 2-core machine: compare within one run"}
    results: dict = {}
    for name in args.columns:
        results[name] = time_only(name, args) if args.time_only else study_column(name, args)
        out.write_text(json.dumps({"meta": meta, "columns": results}, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(results, indent=1) if args.time_only else table(results))


if __name__ == "__main__":
    main()
