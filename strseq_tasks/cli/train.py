"""``strseq train``, ``strseq pretrain`` and ``strseq export``: build model and LM bundles (torch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    InputColumnOpt,
    Policy,
    Precision,
    QuietOpt,
    TargetColumnOpt,
    app,
    check_output_option,
    column_hint,
    fail,
    graphs_to_write,
    known_inputs,
    log,
    option,
    precision_line,
    print_metrics,
    read_known,
    read_pairs_file,
    setup_logging,
)
from strseq_tasks.core.known import DEFAULT_MAX_DISTANCE
from strseq_tasks.data.files import InputFileError
from strseq_tasks.params import INT8_MAX_CHANGED, MAX_EPOCHS, MAX_LEN, RETRAIN, SEED, TRAIN_PRECISION, TRAIN_THREADS
from strseq_tasks.serve.bundle import BundleError


@app.command()
def train(
    pairs: Annotated[Path, typer.Option(help="CSV or Parquet file of curated pairs (columns: --input-column, "
                                             "--target-column).")],
    out: Annotated[Path, typer.Option(help="Model folder to write (written atomically).")],
    input_column: InputColumnOpt = RETRAIN["input_column"].default,
    target_column: TargetColumnOpt = RETRAIN["target_column"].default,
    seed: Annotated[int, option(SEED)] = SEED.default,
    max_epochs: Annotated[int, option(MAX_EPOCHS, bounds=True)] = MAX_EPOCHS.default,
    max_minutes: Annotated[float | None, typer.Option(help="Stop training after this many minutes.")] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 3e-3,
    val_fraction: Annotated[float, typer.Option(help="Share of pairs held out for validation.")] = 0.15,
    augment: Annotated[Policy, typer.Option(help="Noise kinds: auto (those the pairs show), all, none.")] = Policy.auto,
    max_len: Annotated[int, option(MAX_LEN, bounds=True)] = MAX_LEN.default,
    threads: Annotated[int, option(TRAIN_THREADS, bounds=True)] = TRAIN_THREADS.default,
    precision: Annotated[Precision, option(TRAIN_PRECISION)] = Precision(TRAIN_PRECISION.default),
    int8_max_changed: Annotated[float, option(INT8_MAX_CHANGED, bounds=True)] = INT8_MAX_CHANGED.default,
    name: Annotated[str | None, typer.Option(help="Model name recorded in the manifest.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="What fine-tuning starts from: `default` (the pretrained encoder-decoder shipped with strseq; the default), another pretrained model, or a character LM folder from `strseq pretrain` (see docs/concepts.md, Pretrained model).")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train from random weights instead.")] = False,
    known_values: Annotated[list[Path] | None, typer.Option(help="File(s) of valid output values (text: one per line; CSV/Parquet: --known-column). Stored in the model: inputs that are known values are kept, inputs within --max-distance edits of known values become the nearest one. The pairs' targets are added. Repeat for several files.")] = None,
    known_column: Annotated[str | None, typer.Option(help="Column of --known-values CSV/Parquet files (default: the only column, or `input`).")] = None,
    max_distance: Annotated[int, typer.Option(help="Edits (insert, delete, substitute, swap) within which an input snaps to a known value.")] = DEFAULT_MAX_DISTANCE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a normalizer on PAIRS and write a model bundle to OUT.

    By default it fine-tunes the encoder-decoder shipped with strseq, pretrained on generated
    normalization tasks (dates, names, phones, codes, casing, noise); --no-pretrained starts from
    random weights, --pretrained LM_DIR from a character LM (e.g. adapted to your column with
    `strseq pretrain --from`).

    With --known-values (a dictionary, a catalogue, the clean values of the column), outputs
    prefer those values: the way to correct misspellings of values the pairs never showed.
    """
    # long: one typer option a line (23 of them); the body reads, trains and reports
    setup_logging(quiet)
    lm_folder = None if pretrained in (None, "default") else pretrained  # "default": the model shipped with strseq
    check_output_option("--out", out, [("--pairs", pairs), *known_inputs(known_values), ("--pretrained", lm_folder)],
                  folder=True)
    if out.exists() and not force:
        fail(f"{out} already exists (pass --force to replace it)")
    if pretrained is not None and no_pretrained:
        fail("--pretrained and --no-pretrained exclude each other")
    report = read_pairs_file(pairs, max_len, input_column, target_column)
    if report.duplicates:
        log.warning("%s: dropped %d duplicate pair(s)", pairs, report.duplicates)
    known = None
    if known_values:
        known = read_known(known_values, known_column, max_distance, extra=[b for _, b in report.pairs])
    from strseq_tasks.core.augment import AugmentConfig  # torch-free

    try:
        from strseq_tasks.learn.build import (
            DEFAULT_LM,
            DEFAULT_PRETRAINED,
            ExportFailed,
            TrainingDataError,
            train_bundle,
        )
        from strseq_tasks.learn.training import TrainConfig
    except ImportError as exc:
        fail(f"training needs the train extra ({exc}); install it with: "
              "pip install torch==2.13.0 && pip install 'strseq[train]'", code=1)

    lm_dir = None if no_pretrained else (pretrained or DEFAULT_PRETRAINED)
    lm_dir = lm_dir if lm_dir in (None, DEFAULT_LM) else Path(lm_dir)
    cfg = TrainConfig(seed=seed, max_epochs=max_epochs, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
                      val_fraction=val_fraction, threads=threads, augment=AugmentConfig(policy=augment.value),
                      precision=graphs_to_write(precision), int8_max_changed=int8_max_changed)
    with _epoch_progress(quiet, max_epochs) as progress:
        try:
            outcome = train_bundle(report.pairs, out, cfg, {"max_len": max_len}, name=name, overwrite=force,
                                   data_info={"source": str(pairs), "rows": report.rows,
                                              "duplicates_dropped": report.duplicates},
                                   on_epoch=progress.update, pretrained=lm_dir, known=known)
        except BundleError as exc:
            fail(f"pretrained model: {exc}")
        except (TrainingDataError, FileExistsError, ValueError) as exc:
            fail(str(exc))
        except ExportFailed as exc:  # trained, not exported: the message says where the training is kept
            fail(str(exc), code=1)
    manifest = outcome.manifest
    training = manifest["training"]
    typer.echo(f"\nmodel written to {out}")
    typer.echo(f"  epochs {training['epochs']} (best {training['best_epoch']}, stopped by {training['stopped']}), "
               f"{training['seconds']:.0f} s ({training.get('samples_per_s', 0):,.0f} samples/s); "
               f"{manifest['data']['train_pairs']} training / "
               f"{manifest['data']['validation_pairs']} validation pairs")
    lm = manifest.get("pretrained")
    kind = "pretrained encoder-decoder" if (lm or {}).get("kind") == "transducer" else "pretrained LM"
    typer.echo(f"  started from: {lm['path'] + f' ({kind})' if lm else 'random weights (--no-pretrained)'}")
    margin = manifest["decoding"]["identity_margin"]
    if manifest["decoding"].get("known_values"):
        info = manifest["decoding"]["known_values"]
        typer.echo(f"  known values: {info['values']} (inputs within {info['max_distance']} edits snap to them; "
                   f"list-order prior weight {info.get('prior_weight', 0.0)})")
    kinds = ", ".join(k for k, on in manifest["augmentation_kinds"].items() if on) or "none"
    typer.echo(f"  noise kinds used: {kinds}; identity margin {margin} nats "
               "(an input is kept unless the answer beats it by this)")
    typer.echo(f"  serves: {precision_line(manifest.get('precision') or {})}")
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
    input_column: Annotated[str | None, typer.Option(help="Column of CSV/Parquet corpus files (default: the only column, or `input`).")] = None,
    max_minutes: Annotated[float, typer.Option(help="Time budget in minutes; the best held-out state is kept.")] = 10.0,
    max_epochs: Annotated[int, typer.Option(help="Maximum passes over the corpus.")] = 50,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default 2e-3; 1e-3 with --from).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (held-out slice, initialization, batches).")] = 0,
    min_count: Annotated[int, typer.Option(help="Characters seen fewer times stay out of the vocabulary.")] = 3,
    max_len: Annotated[int, typer.Option(help="Strings longer than this are skipped.")] = MAX_LEN.default,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 2,
    name: Annotated[str | None, typer.Option(help="LM name recorded in the manifest.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing LM folder.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Pretrain a character language model on unlabeled strings (or adapt one with --from).

    The LM folder can then be fine-tuned into a normalizer: `strseq train --pretrained OUT`.
    """
    # long: one typer option a line (15 of them); the body reads, pretrains and reports
    from strseq_tasks.data.corpus import read_corpus

    setup_logging(quiet)
    files = [*corpus, *(more or [])]
    check_output_option("--out", out, [*(("--corpus", f) for f in files), ("--from", from_)], folder=True)
    if out.exists() and not force:
        fail(f"{out} already exists (pass --force to replace it)")
    try:
        report = read_corpus(files, input_column, max_len)
    except InputFileError as exc:
        fail(column_hint(exc, "--input-column"))
    if report.blank or report.too_long:
        log.warning("skipped %d blank value(s) and %d string(s) longer than %d characters",
                    report.blank, report.too_long, max_len)
    try:
        from safetensors import SafetensorError

        from strseq_tasks.learn.lm_bundle import pretrain_bundle
        from strseq_tasks.learn.pretraining import PretrainConfig
    except ImportError as exc:
        fail(f"pretraining needs the train extra ({exc})", code=1)
    cfg = PretrainConfig(seed=seed, minutes=max_minutes, max_epochs=max_epochs, threads=threads,
                         lr=lr if lr is not None else (1e-3 if from_ is not None else 2e-3))
    with _budget_progress(quiet) as progress:
        try:
            manifest = pretrain_bundle(report.texts, out, cfg, parent=from_, min_count=min_count, name=name,
                                       overwrite=force, corpus_info={"sources": report.sources,
                                                                     "blank_skipped": report.blank,
                                                                     "too_long_skipped": report.too_long},
                                       on_eval=progress.update)
        except BundleError as exc:
            fail(f"--from: {exc}")
        except (FileExistsError, ValueError) as exc:
            fail(str(exc))
        except (OSError, SafetensorError) as exc:
            # disk full (safetensors reports it in its own type) or a folder removed since the check:
            # write_bundle has removed its temporary folder
            fail(f"--out {out} could not be written ({exc}); nothing was written there")
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
    quiet: QuietOpt = False,
) -> None:
    """Export a kept training into a model bundle: the ONNX graphs, checked against PyTorch as
    `train` checks them. It serves fp32 graphs (int8 graphs are judged on the training pairs)."""
    setup_logging(quiet)
    check_output_option("--out", out, [("--from", from_)], folder=True)
    if out.exists() and not force:
        fail(f"{out} already exists (pass --force to replace it)")
    try:
        from safetensors import SafetensorError

        from strseq_tasks.learn.export import ParityError
        from strseq_tasks.learn.unexported import export_kept as export_folder
    except ImportError as exc:
        fail(f"exporting needs the train extra ({exc}); install it with: "
              "pip install torch==2.13.0 && pip install 'strseq[train]'", code=1)
    try:
        manifest = export_folder(from_, out, overwrite=force)
    except BundleError as exc:
        fail(f"--from: {exc}")
    except ParityError as exc:
        fail(f"{exc}; nothing was written, {from_} is unchanged", code=1)
    except (OSError, SafetensorError) as exc:  # disk full, say: write_bundle has removed its temporary folder
        fail(f"--out {out} could not be written ({exc}); nothing was written there", code=1)
    parity = manifest["onnx_parity"]
    typer.echo(f"model written to {out} (from {from_}); serves fp32 graphs")
    typer.echo(f"  ONNX parity on {parity['rows']} rows: {parity['near_ties']} near ties, no other output differs; "
               f"token probabilities within {parity['onnx_error']:.1e} of float64 (PyTorch fp32: "
               f"{parity['fp32_noise']:.1e}, allowed {parity['bound']:.1e})")
