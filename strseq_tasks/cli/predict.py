"""``strseq predict`` and ``strseq evaluate``: run a model with onnxruntime (no torch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    InputColumnOpt,
    Precision,
    QuietOpt,
    TargetColumnOpt,
    app,
    check_output_option,
    column_hint,
    fail,
    known_inputs,
    log,
    option,
    print_metrics,
    read_known,
    read_pairs_file,
    setup_logging,
    write_output,
)
from strseq_tasks.core.known import DEFAULT_MAX_DISTANCE
from strseq_tasks.data.files import InputFileError, read_inputs, write_table, write_text
from strseq_tasks.data.output_paths import same_file
from strseq_tasks.params import NO_PROGRAMS, RETRAIN, RUN_PRECISION, THRESHOLD
from strseq_tasks.serve.bundle import BundleError
from strseq_tasks.serve.refs import RegistryError

OUTPUT_COLUMNS = ("prediction", "confidence", "status")


def resolve_model(model: str) -> Path:
    """A model folder, or REGISTRY/NAME@ALIAS|VERSION|latest fetched (and verified) from a registry."""
    from strseq_tasks.serve.loading import resolve_model as resolve

    try:
        path, _, version = resolve(model)
    except RegistryError as exc:
        fail(str(exc))
    except BundleError as exc:
        fail(f"{model}: {exc}")
    if version is not None:
        log.info("model %s is version %d (%s)", model, version, path)
    return path  # a folder: Normalizer says clearly what is wrong with it


def load_normalizer(model: str, threads: int | None, known_values: list[Path] | None = None,
                    known_column: str | None = None, max_distance: int | None = None,
                    no_known_values: bool = False, precision: str = "auto", programs: bool = True):
    import copy

    from strseq_tasks.core.known import KnownValues
    from strseq_tasks.serve.loading import open_model

    if known_values and no_known_values:
        fail("--known-values and --no-known-values exclude each other")
    known = None
    if no_known_values:
        known = KnownValues([])
    elif known_values:
        known = read_known(known_values, known_column,
                           DEFAULT_MAX_DISTANCE if max_distance is None else max_distance)
    opened = open_model(model, threads=threads, precision=precision, known=known, programs=programs)
    normalizer = opened.normalizer
    if max_distance is not None and not known_values and normalizer.known:
        normalizer = copy.copy(normalizer)  # the loaded model stays as it is; this one snaps further
        normalizer.known = KnownValues(normalizer.known.values, max_distance=max_distance)
    log.info("running the %s graphs of %s", normalizer.precision, opened.label)
    if normalizer.known:
        log.info("decoding prefers %d known values (within %d edits)", len(normalizer.known),
                 normalizer.known.max_distance)
    return normalizer


def log_programs(normalizer, predictions) -> None:
    """What the layout programs did (``core/programs.py``): how many rows they answered, and the
    programs that answered most, as a person can read them (``$3`` is the input's third token)."""
    if normalizer.programs is None:
        return
    summary = normalizer.programs.summary()
    answered = sum(p.by == "program" for p in predictions)
    log.info("layout programs: %d of them answered %d of %d rows (%.1f%%); the model decoded the rest", summary["programs"],
             answered, len(predictions), 100 * answered / max(len(predictions), 1))
    for shown in summary["shown"][:5]:
        log.info("  %r -> %s (%d distinct values)", shown["shape"], shown["program"], shown["covered"])


WORKERS_HELP = ("Processes to normalize on: 'auto' (one per core, when there are at least 4,096 distinct "
                "values per process) or a number; each loads the model once.")


# The options predict and evaluate share, written once.
ModelOpt = Annotated[str, typer.Option(help="Model folder written by `strseq train`, or REGISTRY/NAME@production (an alias, a version number or `latest`).")]
BeamOpt = Annotated[int | None, typer.Option(help="Beam width (default: the model's, usually 1 = greedy).")]
BatchSizeOpt = Annotated[int, typer.Option(help="Rows per onnxruntime batch.")]
ThreadsOpt = Annotated[int | None, typer.Option(help="onnxruntime threads (default 1: faster than 2 for these models; use processes for more cores).")]
WorkersOpt = Annotated[str, typer.Option(help=WORKERS_HELP)]
PrecisionOpt = Annotated[Precision, option(RUN_PRECISION)]
KnownValuesOpt = Annotated[list[Path] | None, typer.Option(help="Use these known values (files as for `train`) instead of the model's own list.")]
KnownColumnOpt = Annotated[str | None, typer.Option(help="Column of --known-values CSV/Parquet files.")]
MaxDistanceOpt = Annotated[int | None, typer.Option(help="Edits within which an input snaps to a known value (default: the model's, else 2).")]
NoKnownValuesOpt = Annotated[bool, typer.Option("--no-known-values", help="Decode freely, ignoring the model's known values.")]
NoProgramsOpt = Annotated[bool, option(NO_PROGRAMS)]


def _workers(value: str, texts: list[str]) -> int:
    from strseq_tasks.serve.workers import auto_workers

    if value == "auto":
        return auto_workers(len(set(texts)))
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        fail(f"--workers must be 'auto' or a whole number of at least 1, not {value!r}")
    return workers


def _normalize_with_progress(normalizer, texts: list[str], beam: int | None, batch_size: int, quiet: bool,
                             workers: str = "1", threads: int | None = None):
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    from strseq_tasks.serve.workers import normalize_parallel

    count = _workers(workers, texts)
    if count > 1:
        log.info("normalizing %d rows on %s processes", len(texts), f"up to {count}" if workers == "auto" else count)
    with tqdm(total=len(texts), desc="normalizing", unit="row", file=sys.stderr,
              disable=quiet or not sys.stderr.isatty()) as bar:
        try:
            return normalize_parallel(normalizer, texts, count, beam=beam, batch_size=batch_size, threads=threads,
                                      on_batch=bar.update, auto=workers == "auto")
        except BrokenProcessPool as exc:
            fail(f"a worker process died ({exc}); nothing was written. Re-run with --workers 1 to see why.", 1)


@app.command()
def predict(
    model: ModelOpt,
    input: Annotated[Path, typer.Option("--input", help="CSV or Parquet file of values to normalize (column: "
                                                        "--input-column).")],
    out: Annotated[Path, typer.Option(help="CSV or Parquet to write (input columns + prediction, confidence, status).")],
    input_column: InputColumnOpt = RETRAIN["input_column"].default,
    beam: BeamOpt = None,
    batch_size: BatchSizeOpt = 64,
    threads: ThreadsOpt = None,
    workers: WorkersOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    known_values: KnownValuesOpt = None,
    known_column: KnownColumnOpt = None,
    max_distance: MaxDistanceOpt = None,
    no_known_values: NoKnownValuesOpt = False,
    no_programs: NoProgramsOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Normalize every row of INPUT with onnxruntime and write OUTPUT in the same order."""
    setup_logging(quiet)
    model_dir = resolve_model(model)
    check_output_option("--out", out, [("--input", input), ("--model", model_dir), *known_inputs(known_values)],
                        table=True)
    try:
        frame = read_inputs(input, input_column)
    except InputFileError as exc:
        fail(column_hint(exc, "--input-column"))
    clash = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if clash:
        fail(f"{input}: already has column(s) {', '.join(clash)}; rename them, they would be overwritten")
    normalizer = load_normalizer(str(model_dir), threads, known_values, known_column, max_distance,
                                  no_known_values, precision.value, not no_programs)
    predictions = _normalize_with_progress(normalizer, list(frame[input_column]), beam, batch_size, quiet, workers,
                                          threads)
    log_programs(normalizer, predictions)
    rows = frame.copy()
    rows["prediction"] = [p.text for p in predictions]
    rows["confidence"] = [round(p.confidence, 6) for p in predictions]
    rows["status"] = [p.status for p in predictions]
    write_output("--out", out, lambda: write_table(rows, out))
    changed = sum(p.text != t for p, t in zip(predictions, frame[input_column]))
    flagged = sum(p.status != "ok" for p in predictions)
    log.info("wrote %d predictions to %s (%d changed, %d passed through as empty/too long)",
             len(rows), out, changed, flagged)


@app.command()
def evaluate(
    model: ModelOpt,
    pairs: Annotated[Path, typer.Option(help="CSV or Parquet of held-out pairs (columns: --input-column, "
                                             "--target-column).")],
    input_column: InputColumnOpt = RETRAIN["input_column"].default,
    target_column: TargetColumnOpt = RETRAIN["target_column"].default,
    beam: BeamOpt = None,
    threshold: Annotated[float, typer.Option(min=0, max=1, help="Confidence threshold of the metrics at threshold (what `strseq clean --threshold` would apply).")] = THRESHOLD.default,
    out: Annotated[Path | None, typer.Option(help="Also write per-row predictions here (CSV or Parquet).")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Also write the metrics as JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on standard output "
                                                         "instead of text.")] = False,
    batch_size: BatchSizeOpt = 64,
    threads: ThreadsOpt = None,
    workers: WorkersOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    known_values: KnownValuesOpt = None,
    known_column: KnownColumnOpt = None,
    max_distance: MaxDistanceOpt = None,
    no_known_values: NoKnownValuesOpt = False,
    no_programs: NoProgramsOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score a model on PAIRS: exact match, CER, harm, accuracy at confidence coverage."""
    # long: one typer option a line (21 of them); the body checks, predicts, scores and writes
    from strseq_tasks.core.metrics import jsonable, reliability_table, summarize

    setup_logging(quiet)
    model_dir = resolve_model(model)
    sources = [("--pairs", pairs), ("--model", model_dir), *known_inputs(known_values)]
    check_output_option("--out", out, sources, table=True)
    check_output_option("--json-out", json_out, sources)
    if out is not None and json_out is not None and same_file(out, json_out):
        fail(f"--json-out {json_out} and --out {out} are the same file; give each its own path")
    normalizer = load_normalizer(str(model_dir), threads, known_values, known_column, max_distance,
                                  no_known_values, precision.value, not no_programs)
    report = read_pairs_file(pairs, normalizer.max_len, input_column, target_column)
    inputs = [a for a, _ in report.pairs]
    targets = [b for _, b in report.pairs]
    predictions = _normalize_with_progress(normalizer, inputs, beam, batch_size, quiet, workers, threads)
    log_programs(normalizer, predictions)
    outputs = [p.text for p in predictions]
    confidence = [p.confidence for p in predictions]
    metrics = summarize(inputs, targets, outputs, confidence, threshold=threshold)
    reliability = reliability_table([o == t for o, t in zip(outputs, targets)], confidence)
    result = {"model": normalizer.name, "pairs": len(inputs), "metrics": jsonable(metrics), "reliability": reliability}
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"{normalizer.name} on {pairs} ({len(inputs)} pairs)")
        print_metrics(metrics, reliability)
    if out is not None:
        import pandas as pd

        rows = pd.DataFrame({"input": inputs, "target": targets, "prediction": outputs, "confidence": confidence,
                             "correct": [o == t for o, t in zip(outputs, targets)]})
        write_output("--out", out, lambda: write_table(rows, out))
    if json_out is not None:
        text = json.dumps({"metrics": result["metrics"], "reliability": reliability}, indent=2)
        write_output("--json-out", json_out, lambda: write_text(text, json_out))
