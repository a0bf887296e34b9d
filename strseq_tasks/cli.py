"""The ``strseq`` command: pretrain, train, export, predict, evaluate (and, from ``cli_flows``: retrain, models).

``predict`` and ``evaluate`` run onnxruntime only; ``train`` imports torch (the ``train`` extra).
Exit codes: 0 success, 1 failure, 2 bad input or usage (the message names file, row and column).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .bundle import BundleError
from .io import (
    InputFileError,
    OutputPathError,
    check_output,
    read_inputs,
    read_pairs,
    same_file,
    write_table,
    write_text,
)
from .known import DEFAULT_MAX_DISTANCE

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a string normalizer from a few (input, target) pairs; apply it with onnxruntime.")
log = logging.getLogger("strseq")

OUTPUT_COLUMNS = ("prediction", "confidence", "status")
DEFAULT_MAX_LEN = 128


class Policy(StrEnum):
    auto = "auto"
    all = "all"
    none = "none"


class TrainPrecision(StrEnum):
    int8 = "int8"
    fp32 = "fp32"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    int8 = "int8"


PRECISION_HELP = "Graphs to run: auto (the model's int8 graphs when it has them, else fp32), fp32 or int8."


def _precision_line(info: dict) -> str:
    int8, refused = info.get("int8"), info.get("int8_refused")
    if int8:
        gate = int8["gate"]
        return (f"int8 graphs ({gate['changed']} of {gate['rows']} outputs differ from fp32; "
                f"exact match {gate['exact_int8']:.2%} vs {gate['exact_fp32']:.2%}); fp32 kept for --precision fp32")
    if refused:
        return f"fp32 graphs (int8 refused: {refused['reason']})"
    return "fp32 graphs"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _check_output(option: str, output: Path | None, inputs=(), folder: bool = False, replaced: bool = True) -> None:
    """Refuse, before any work, an output that is one of ``inputs`` ((option, path) pairs), lies
    in or holds one, or cannot be written (see ``io.check_output``); --force never overrides it."""
    if output is None:
        return
    try:
        check_output(option, output, inputs, folder=folder, replaced=replaced)
    except OutputPathError as exc:
        _fail(str(exc))


def _known_inputs(paths: list[Path] | None) -> list[tuple[str, Path]]:
    return [("--known-values", p) for p in paths or []]


def _write_output(option: str, path: Path, write) -> None:
    """``write()`` (atomic); a failure now (disk full, a folder removed since the check) is one
    error line, and the write left no partial file."""
    try:
        write()
    except OSError as exc:
        _fail(f"{option} {path} could not be written ({exc}); nothing was written there")


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Prefect's API calls, one line each
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_theirs)


def _not_theirs(record: logging.LogRecord) -> bool:
    """Skip GX's set-up chatter below WARNING (GX sets its loggers' levels itself, so a level on
    'great_expectations' does not reach them)."""
    return not (record.name.startswith("great_expectations") and record.levelno < logging.WARNING)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_metrics(metrics: dict, reliability: list[dict] | None = None) -> None:
    labels = {
        "rows": "rows", "exact_match": "exact match", "cer": "character error rate (CER)",
        "harm": "harm (clean inputs changed)", "clean_rows": "clean rows (input == target)",
        "accuracy_at_50": "accuracy of the 50% most confident", "accuracy_at_80": "accuracy of the 80% most confident",
        "coverage_at_99": "coverage at >= 99% precision", "coverage_at_threshold": "coverage at confidence >= threshold",
        "accuracy_at_threshold": "accuracy at confidence >= threshold", "threshold": "threshold",
        "ece": "expected calibration error",
    }
    width = max(len(v) for v in labels.values())
    for key, label in labels.items():
        if key in metrics:
            typer.echo(f"  {label:<{width}}  {_fmt(metrics[key])}")
    if reliability:
        typer.echo("\n  reliability (confidence bin: rows, mean confidence, accuracy)")
        for row in reliability:
            typer.echo(f"    {row['bin']}: {row['rows']:>6}  {row['confidence']:.3f}  {row['accuracy']:.3f}")


@app.command()
def train(
    pairs: Annotated[Path, typer.Option(help="CSV (header input,target) or Parquet file of curated pairs.")],
    out: Annotated[Path, typer.Option(help="Model folder to write (written atomically).")],
    seed: Annotated[int, typer.Option(help="Random seed (split, augmentation, initialization).")] = 0,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping usually ends sooner).")] = 40,
    max_minutes: Annotated[float | None, typer.Option(help="Stop training after this many minutes.")] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 3e-3,
    val_fraction: Annotated[float, typer.Option(help="Share of pairs held out for validation.")] = 0.15,
    augment: Annotated[Policy, typer.Option(help="Noise kinds: auto (those the pairs show), all, none.")] = Policy.auto,
    max_len: Annotated[int, typer.Option(help="Longest input/target in characters the model accepts.")] = DEFAULT_MAX_LEN,
    threads: Annotated[int, typer.Option(help="torch threads for training (small GRUs train fastest on 1).")] = 1,
    precision: Annotated[TrainPrecision, typer.Option(help="int8: also write int8 graphs (1.1-1.3x faster to run, by CPU) and serve them, unless they change more than --int8-max-changed of the outputs on rows drawn from the pairs (then fp32 only); fp32: fp32 graphs only.")] = TrainPrecision.int8,
    int8_max_changed: Annotated[float, typer.Option(min=0, max=1, help="Share of outputs int8 may change against fp32 before it is refused.")] = 0.005,
    name: Annotated[str | None, typer.Option(help="Model name recorded in the manifest.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Fine-tune from a pretrained character LM: `default` (the LM shipped with strseq) or an LM folder from `strseq pretrain`. Default: from scratch (see README, Pretrained language model).")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train from scratch (the default; explicit for scripts).")] = False,
    known_values: Annotated[list[Path] | None, typer.Option(help="File(s) of valid output values (text: one per line; CSV/Parquet: --known-column). Stored in the model: inputs that are known values are kept, inputs within --max-distance edits of known values become the nearest one. The pairs' targets are added. Repeat for several files.")] = None,
    known_column: Annotated[str | None, typer.Option(help="Column of --known-values CSV/Parquet files (default: the only column, or `input`).")] = None,
    max_distance: Annotated[int, typer.Option(help="Edits (insert, delete, substitute, swap) within which an input snaps to a known value.")] = DEFAULT_MAX_DISTANCE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or info logs.")] = False,
) -> None:
    """Train a normalizer on PAIRS and write a model bundle to OUT.

    By default it starts from random weights: on the benchmark, augmentation from scratch matched
    or beat fine-tuning the shipped LM. --pretrained default fine-tunes the LM shipped with strseq,
    --pretrained LM_DIR another one (e.g. adapted to your column with `strseq pretrain --from`).

    With --known-values (a dictionary, a catalogue, the clean values of the column), outputs
    prefer those values: the way to correct misspellings of values the pairs never showed.
    """
    _setup_logging(quiet)
    lm_folder = None if pretrained in (None, "default") else pretrained  # "default": the LM shipped with strseq
    _check_output("--out", out, [("--pairs", pairs), *_known_inputs(known_values), ("--pretrained", lm_folder)],
                  folder=True)
    if out.exists() and not force:
        _fail(f"{out} already exists (pass --force to replace it)")
    if pretrained is not None and no_pretrained:
        _fail("--pretrained and --no-pretrained exclude each other")
    try:
        report = read_pairs(pairs, max_len)
    except InputFileError as exc:
        _fail(str(exc))
    if report.duplicates:
        log.warning("%s: dropped %d duplicate pair(s)", pairs, report.duplicates)
    known = None
    if known_values:
        known = _read_known(known_values, known_column, max_distance, extra=[b for _, b in report.pairs])
    from .augment import AugmentConfig  # torch-free

    try:
        from .pipeline import DEFAULT_LM, DEFAULT_PRETRAINED, ExportFailed, TrainingDataError, train_bundle
        from .training import TrainConfig
    except ImportError as exc:
        _fail(f"training needs the train extra ({exc}); install it with: "
              "pip install torch==2.13.0 && pip install 'strseq[train]'", code=1)

    lm_dir = None if no_pretrained else (pretrained or DEFAULT_PRETRAINED)
    lm_dir = lm_dir if lm_dir in (None, DEFAULT_LM) else Path(lm_dir)
    cfg = TrainConfig(seed=seed, max_epochs=epochs, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
                      val_fraction=val_fraction, threads=threads, augment=AugmentConfig(policy=augment.value),
                      precision=precision.value, int8_max_changed=int8_max_changed)
    with _epoch_progress(quiet, epochs) as progress:
        try:
            outcome = train_bundle(report.pairs, out, cfg, {"max_len": max_len}, name=name, overwrite=force,
                                   data_info={"source": str(pairs), "rows": report.rows,
                                              "duplicates_dropped": report.duplicates},
                                   on_epoch=progress.update, pretrained=lm_dir, known=known)
        except BundleError as exc:
            _fail(f"pretrained LM: {exc}")
        except (TrainingDataError, FileExistsError, ValueError) as exc:
            _fail(str(exc))
        except ExportFailed as exc:  # trained, not exported: the message says where the training is kept
            _fail(str(exc), code=1)
    manifest = outcome.manifest
    training = manifest["training"]
    typer.echo(f"\nmodel written to {out}")
    typer.echo(f"  epochs {training['epochs']} (best {training['best_epoch']}, stopped by {training['stopped']}), "
               f"{training['seconds']:.0f} s ({training.get('samples_per_s', 0):,.0f} samples/s); "
               f"{manifest['data']['train_pairs']} training / "
               f"{manifest['data']['validation_pairs']} validation pairs")
    lm = manifest.get("pretrained")
    typer.echo(f"  started from: {lm['path'] + ' (pretrained LM)' if lm else 'random weights (no pretrained LM)'}")
    margin = manifest["decoding"]["identity_margin"]
    if manifest["decoding"].get("known_values"):
        info = manifest["decoding"]["known_values"]
        typer.echo(f"  known values: {info['values']} (inputs within {info['max_distance']} edits snap to them; "
                   f"list-order prior weight {info.get('prior_weight', 0.0)})")
    kinds = ", ".join(k for k, on in manifest["augmentation_kinds"].items() if on) or "none"
    typer.echo(f"  noise kinds used: {kinds}; identity margin {margin} nats "
               "(an input is kept unless the answer beats it by this)")
    typer.echo(f"  serves: {_precision_line(manifest.get('precision') or {})}")
    typer.echo("validation metrics (held-out pairs):")
    print_metrics(manifest["metrics"]["validation"])


class _Progress:
    """A tqdm bar on a terminal; log lines elsewhere. Log lines print above the bar, not through it.

    ``measure(report)`` returns (position on the bar, stats to show, whether it is the best so far).
    """

    def __init__(self, quiet: bool, total: int, desc: str, unit: str, measure):
        self.quiet, self.total, self.desc, self.unit, self.measure = quiet, total, desc, unit, measure
        self.bar = None

    def __enter__(self):
        if not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.redirect = logging_redirect_tqdm()
            self.redirect.__enter__()
            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr)
        return self

    def update(self, report) -> None:
        position, stats, best = self.measure(report)
        if self.bar is not None:
            self.bar.set_postfix(stats)
            self.bar.update(position - self.bar.n)
        elif not self.quiet:
            where = f"{position}%" if self.unit == "%" else f"{self.unit} {position}/{self.total}"
            log.info("%s %s %s%s", self.desc, where, " ".join(f"{k}={v}" for k, v in stats.items()),
                     " (best)" if best else "")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
            self.redirect.__exit__(*exc)


def _epoch_progress(quiet: bool, epochs: int) -> _Progress:
    def measure(r):
        # "best" is judged on the smoothed exact match (then the loss), which early stopping uses
        return r.epoch, {"loss": f"{r.train_loss:.3f}", "val_loss": f"{r.val_loss:.3f}",
                         "val_exact": f"{r.val_exact:.3f}", "smoothed": f"{r.val_smoothed:.3f}",
                         "samples/s": f"{r.samples_per_s:.0f}"}, r.best
    return _Progress(quiet, epochs, "training", "epoch", measure)


def _budget_progress(quiet: bool) -> _Progress:
    def measure(r):
        return int(100 * r.progress), {"step": r.step, "train_bpc": f"{r.train_bpc:.3f}",
                                       "heldout_bpc": f"{r.heldout_bpc['decoder']:.3f}"}, r.best
    return _Progress(quiet, 100, "pretraining", "%", measure)


@app.command()
def pretrain(
    corpus: Annotated[list[Path], typer.Option(help="Text file (one string per line), CSV or Parquet; more files may follow.")],
    out: Annotated[Path, typer.Option(help="LM folder to write (written atomically).")],
    more: Annotated[list[Path] | None, typer.Argument(help="More corpus files.", show_default=False)] = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Continue from this LM folder (domain-adaptive pretraining on your own column).")] = None,
    column: Annotated[str | None, typer.Option(help="Column of CSV/Parquet corpus files (default: the only column, or `input`).")] = None,
    minutes: Annotated[float, typer.Option(help="Time budget; the best held-out state is kept.")] = 10.0,
    epochs: Annotated[int, typer.Option(help="Maximum passes over the corpus.")] = 50,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default 2e-3; 1e-3 with --from).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (held-out slice, initialization, batches).")] = 0,
    min_count: Annotated[int, typer.Option(help="Characters seen fewer times stay out of the vocabulary.")] = 3,
    max_len: Annotated[int, typer.Option(help="Strings longer than this are skipped.")] = DEFAULT_MAX_LEN,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 2,
    name: Annotated[str | None, typer.Option(help="LM name recorded in the manifest.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing LM folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Pretrain a character language model on unlabeled strings (or adapt one with --from).

    The LM folder can then be fine-tuned into a normalizer: `strseq train --pretrained OUT`.
    """
    from .io import read_corpus

    _setup_logging(quiet)
    files = [*corpus, *(more or [])]
    _check_output("--out", out, [*(("--corpus", f) for f in files), ("--from", from_)], folder=True)
    if out.exists() and not force:
        _fail(f"{out} already exists (pass --force to replace it)")
    try:
        report = read_corpus(files, column, max_len)
    except InputFileError as exc:
        _fail(str(exc))
    if report.blank or report.too_long:
        log.warning("skipped %d blank value(s) and %d string(s) longer than %d characters",
                    report.blank, report.too_long, max_len)
    try:
        from safetensors import SafetensorError

        from .lm_bundle import pretrain_bundle
        from .pretraining import PretrainConfig
    except ImportError as exc:
        _fail(f"pretraining needs the train extra ({exc})", code=1)
    cfg = PretrainConfig(seed=seed, minutes=minutes, max_epochs=epochs, threads=threads,
                         lr=lr if lr is not None else (1e-3 if from_ is not None else 2e-3))
    with _budget_progress(quiet) as progress:
        try:
            manifest = pretrain_bundle(report.texts, out, cfg, parent=from_, min_count=min_count, name=name,
                                       overwrite=force, corpus_info={"sources": report.sources,
                                                                     "blank_skipped": report.blank,
                                                                     "too_long_skipped": report.too_long},
                                       on_eval=progress.update)
        except BundleError as exc:
            _fail(f"--from: {exc}")
        except (FileExistsError, ValueError) as exc:
            _fail(str(exc))
        except (OSError, SafetensorError) as exc:
            # disk full (safetensors reports it in its own type) or a folder removed since the check:
            # write_bundle has removed its temporary folder
            _fail(f"--out {out} could not be written ({exc}); nothing was written there")
    held = manifest["heldout"]
    typer.echo(f"\nLM written to {out}: {manifest['corpus']['strings']} strings, "
               f"{manifest['training']['steps']} steps ({manifest['training']['epochs']} epochs), "
               f"{manifest['training']['seconds']:.0f} s")
    typer.echo(f"  bits per character on {held['strings'] or 'training'} {held['scored_on']}: "
               + ", ".join(f"{k} {v:.3f} (was {held['initial_bits_per_char'][k]:.3f})"
                           for k, v in held["bits_per_char"].items()))


@app.command("export")
def export_kept(
    from_: Annotated[Path, typer.Option("--from", help="Folder of a training whose export failed (MODEL.unexported-TIME, named by `strseq train`'s error).")],
    out: Annotated[Path, typer.Option(help="Model folder to write (written atomically).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Export a kept training into a model bundle: the ONNX graphs, checked against PyTorch as
    `train` checks them. It serves fp32 graphs (int8 graphs are judged on the training pairs)."""
    _setup_logging(quiet)
    _check_output("--out", out, [("--from", from_)], folder=True)
    if out.exists() and not force:
        _fail(f"{out} already exists (pass --force to replace it)")
    try:
        from safetensors import SafetensorError

        from .export import ParityError
        from .unexported import export_kept as export_folder
    except ImportError as exc:
        _fail(f"exporting needs the train extra ({exc}); install it with: "
              "pip install torch==2.13.0 && pip install 'strseq[train]'", code=1)
    try:
        manifest = export_folder(from_, out, overwrite=force)
    except BundleError as exc:
        _fail(f"--from: {exc}")
    except ParityError as exc:
        _fail(f"{exc}; nothing was written, {from_} is unchanged", code=1)
    except (OSError, SafetensorError) as exc:  # disk full, say: write_bundle has removed its temporary folder
        _fail(f"--out {out} could not be written ({exc}); nothing was written there", code=1)
    parity = manifest["onnx_parity"]
    typer.echo(f"model written to {out} (from {from_}); serves fp32 graphs")
    typer.echo(f"  ONNX parity on {parity['rows']} rows: {parity['near_ties']} near ties, no other output differs; "
               f"token probabilities within {parity['onnx_error']:.1e} of float64 (PyTorch fp32: "
               f"{parity['fp32_noise']:.1e}, allowed {parity['bound']:.1e})")


def _read_known(paths: list[Path], column: str | None, max_distance: int, extra: list[str] = ()):
    """Known values from files (and ``extra`` values, e.g. the pairs' targets), or exit clearly."""
    from .io import read_corpus
    from .known import KnownValues

    if max_distance < 0:
        _fail(f"--max-distance must be >= 0, got {max_distance}")
    try:
        report = read_corpus(paths, column, max_len=10_000)
    except InputFileError as exc:
        _fail(f"--known-values: {exc}")
    known = KnownValues([*report.texts, *extra], max_distance=max_distance)
    log.info("known values: %d distinct (%d read from %s%s%s)", len(known), len(report.texts),
             ", ".join(map(str, paths)), f", {len(extra)} pair targets added" if extra else "",
             f"; {report.blank} blank skipped" if report.blank else "")
    return known


def resolve_model(model: str) -> Path:
    """A model folder, or REGISTRY/NAME@ALIAS|VERSION|latest fetched (and verified) from a registry."""
    from .registry import RegistryError
    from .registry import resolve_model as resolve

    try:
        path, _, version = resolve(model)
    except RegistryError as exc:
        _fail(str(exc))
    except BundleError as exc:
        _fail(f"{model}: {exc}")
    if version is not None:
        log.info("model %s is version %d (%s)", model, version, path)
    return path  # a folder: Normalizer says clearly what is wrong with it


def _load_normalizer(model: str, threads: int | None, known_values: list[Path] | None = None,
                     known_column: str | None = None, max_distance: int | None = None,
                     no_known_values: bool = False, precision: str = "auto"):
    from .known import KnownValues
    from .runtime import Normalizer

    model = resolve_model(model)
    if known_values and no_known_values:
        _fail("--known-values and --no-known-values exclude each other")
    known = None
    if no_known_values:
        known = KnownValues([])
    elif known_values:
        known = _read_known(known_values, known_column,
                            DEFAULT_MAX_DISTANCE if max_distance is None else max_distance)
    try:
        normalizer = Normalizer(model, threads=threads, known=known, precision=precision)
    except BundleError as exc:
        _fail(str(exc))
    if max_distance is not None and not known_values and normalizer.known:
        normalizer.known = KnownValues(normalizer.known.values, max_distance=max_distance)
    log.info("running the %s graphs of %s", normalizer.precision, model)
    if normalizer.known:
        log.info("decoding prefers %d known values (within %d edits)", len(normalizer.known),
                 normalizer.known.max_distance)
    return normalizer


WORKERS_HELP = ("Processes to normalize on: 'auto' (one per core, when there are at least 4,096 distinct "
                "values per process) or a number; each loads the model once.")


def _workers(value: str, texts: list[str]) -> int:
    from .workers import auto_workers

    if value == "auto":
        return auto_workers(len(set(texts)))
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        _fail(f"--workers must be 'auto' or a whole number of at least 1, not {value!r}")
    return workers


def _normalize_with_progress(normalizer, texts: list[str], beam: int | None, batch_size: int, quiet: bool,
                             workers: str = "1", threads: int | None = None):
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    from .workers import normalize_parallel

    count = _workers(workers, texts)
    if count > 1:
        log.info("normalizing %d rows on %d processes", len(texts), count)
    with tqdm(total=len(texts), desc="normalizing", unit="row", file=sys.stderr,
              disable=quiet or not sys.stderr.isatty()) as bar:
        try:
            return normalize_parallel(normalizer, texts, count, beam=beam, batch_size=batch_size, threads=threads,
                                      on_batch=bar.update)
        except BrokenProcessPool as exc:
            _fail(f"a worker process died ({exc}); nothing was written. Re-run with --workers 1 to see why.", 1)


@app.command()
def predict(
    model: Annotated[str, typer.Option(help="Model folder written by `strseq train`, or REGISTRY/NAME@production (an alias, a version number or `latest`).")],
    input: Annotated[Path, typer.Option("--input", help="CSV or Parquet with an `input` column.")],
    output: Annotated[Path, typer.Option(help="CSV or Parquet to write (input columns + prediction, confidence, status).")],
    beam: Annotated[int | None, typer.Option(help="Beam width (default: the model's, usually 1 = greedy).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per onnxruntime batch.")] = 64,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads (default 1: faster than 2 for these models; use processes for more cores).")] = None,
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = Precision.auto,
    known_values: Annotated[list[Path] | None, typer.Option(help="Use these known values (files as for `train`) instead of the model's own list.")] = None,
    known_column: Annotated[str | None, typer.Option(help="Column of --known-values CSV/Parquet files.")] = None,
    max_distance: Annotated[int | None, typer.Option(help="Edits within which an input snaps to a known value (default: the model's, else 2).")] = None,
    no_known_values: Annotated[bool, typer.Option("--no-known-values", help="Decode freely, ignoring the model's known values.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Normalize every row of INPUT with onnxruntime and write OUTPUT in the same order."""
    _setup_logging(quiet)
    model_dir = resolve_model(model)
    _check_output("--output", output, [("--input", input), ("--model", model_dir), *_known_inputs(known_values)])
    try:
        frame = read_inputs(input)
    except InputFileError as exc:
        _fail(str(exc))
    clash = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if clash:
        _fail(f"{input}: already has column(s) {', '.join(clash)}; rename them, they would be overwritten")
    normalizer = _load_normalizer(str(model_dir), threads, known_values, known_column, max_distance,
                                  no_known_values, precision.value)
    predictions = _normalize_with_progress(normalizer, list(frame["input"]), beam, batch_size, quiet, workers,
                                          threads)
    out = frame.copy()
    out["prediction"] = [p.text for p in predictions]
    out["confidence"] = [round(p.confidence, 6) for p in predictions]
    out["status"] = [p.status for p in predictions]
    _write_output("--output", output, lambda: write_table(out, output))
    changed = sum(p.text != t for p, t in zip(predictions, frame["input"]))
    flagged = sum(p.status != "ok" for p in predictions)
    log.info("wrote %d predictions to %s (%d changed, %d passed through as empty/too long)",
             len(out), output, changed, flagged)


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="Model folder written by `strseq train`, or REGISTRY/NAME@production (an alias, a version number or `latest`).")],
    pairs: Annotated[Path, typer.Option(help="CSV or Parquet of held-out pairs (input,target).")],
    beam: Annotated[int | None, typer.Option(help="Beam width (default: the model's).")] = None,
    threshold: Annotated[float, typer.Option(help="Confidence threshold for accuracy at threshold.")] = 0.9,
    output: Annotated[Path | None, typer.Option(help="Also write per-row predictions here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per onnxruntime batch.")] = 64,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads (default 1: faster than 2 for these models; use processes for more cores).")] = None,
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = Precision.auto,
    known_values: Annotated[list[Path] | None, typer.Option(help="Use these known values (files as for `train`) instead of the model's own list.")] = None,
    known_column: Annotated[str | None, typer.Option(help="Column of --known-values CSV/Parquet files.")] = None,
    max_distance: Annotated[int | None, typer.Option(help="Edits within which an input snaps to a known value (default: the model's, else 2).")] = None,
    no_known_values: Annotated[bool, typer.Option("--no-known-values", help="Decode freely, ignoring the model's known values.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Score a model on PAIRS: exact match, CER, harm, accuracy at confidence coverage."""
    from .metrics import jsonable, reliability_table, summarize

    _setup_logging(quiet)
    model_dir = resolve_model(model)
    sources = [("--pairs", pairs), ("--model", model_dir), *_known_inputs(known_values)]
    _check_output("--output", output, sources)
    _check_output("--json", json_out, sources)
    if output is not None and json_out is not None and same_file(output, json_out):
        _fail(f"--json {json_out} and --output {output} are the same file; give each its own path")
    normalizer = _load_normalizer(str(model_dir), threads, known_values, known_column, max_distance,
                                  no_known_values, precision.value)
    try:
        report = read_pairs(pairs, normalizer.max_len)
    except InputFileError as exc:
        _fail(str(exc))
    inputs = [a for a, _ in report.pairs]
    targets = [b for _, b in report.pairs]
    predictions = _normalize_with_progress(normalizer, inputs, beam, batch_size, quiet, workers, threads)
    outputs = [p.text for p in predictions]
    confidence = [p.confidence for p in predictions]
    metrics = summarize(inputs, targets, outputs, confidence, threshold=threshold)
    reliability = reliability_table([o == t for o, t in zip(outputs, targets)], confidence)
    typer.echo(f"{normalizer.name} on {pairs} ({len(inputs)} pairs)")
    print_metrics(metrics, reliability)
    if output is not None:
        import pandas as pd

        rows = pd.DataFrame({"input": inputs, "target": targets, "prediction": outputs, "confidence": confidence,
                             "correct": [o == t for o, t in zip(outputs, targets)]})
        _write_output("--output", output, lambda: write_table(rows, output))
    if json_out is not None:
        text = json.dumps({"metrics": jsonable(metrics), "reliability": reliability}, indent=2)
        _write_output("--json", json_out, lambda: write_text(text, json_out))


def main() -> None:
    app()


from . import cli_flows, cli_jobs  # noqa: E402, F401  (register `retrain`, `models`, `clean`, `demo`, `serve`, ...)

if __name__ == "__main__":
    # `python -m strseq_tasks.cli`: run the app of the imported module, where cli_flows registered
    # its commands (this __main__ copy has only the commands defined above)
    from strseq_tasks.cli import main as registered_main

    registered_main()
