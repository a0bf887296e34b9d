"""What every ``strseq`` command shares: the app, its options' types, errors, logging, progress.

Exit codes: 0 success, 1 failure, 2 bad input or usage (one ``error:`` line naming the fix).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.vocabulary import VocabularyGroup
from strseq_tasks.data.files import ColumnError, InputFileError
from strseq_tasks.data.output_paths import OutputPathError, check_output, check_table_suffix
from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError
from strseq_tasks.params import CLEAN, RETRAIN, Param, cli_name

# strseq's commands never report usage to Prefect (set these to opt in); before prefect is imported
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

os.environ.setdefault("DO_NOT_TRACK", "1")

# Without a Prefect API URL, a flow run starts a temporary local server; Prefect waits 20 s for
# it, which a busy 2-core machine (a nightly job beside a training run) can exceed. Wait longer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


app = typer.Typer(cls=VocabularyGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a string normalizer from a few (input, target) pairs; apply it with onnxruntime.")


def _print_version(value: bool) -> None:
    if value:
        from strseq_tasks import __version__

        typer.echo(f"strseq {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print strseq's version and exit.")] = False) -> None:
    """Learn a string normalizer from a few (input, target) pairs; apply it with onnxruntime."""


log = logging.getLogger("strseq")


class Policy(StrEnum):
    auto = "auto"
    all = "all"
    none = "none"


class Precision(StrEnum):
    """--precision, one Choice for every command: the graphs to run (predict, evaluate, clean) or
    to write (train, retrain: auto and int8 both write int8 graphs behind the int8 gate)."""
    auto = "auto"
    fp32 = "fp32"
    int8 = "int8"


def graphs_to_write(precision: Precision) -> str:
    """What train and retrain write for --precision: fp32 only, or int8 beside it (``TrainConfig.precision``)."""
    return "fp32" if precision == Precision.fp32 else "int8"


def option(spec: Param, bounds: bool = False):
    """``spec`` (``strseq_tasks.params``) as a typer option: its spellings and help; its bounds too
    with ``bounds`` (commands whose values no pydantic record checks)."""
    limits = {"min": spec.ge if spec.ge is not None else spec.gt,
              "max": spec.le if spec.le is not None else spec.lt} if bounds else {}
    return typer.Option(*spec.flags, help=spec.help, envvar=spec.env,
                        **{k: v for k, v in limits.items() if v is not None})


RegistryOpt = Annotated[str, option(RETRAIN["registry"])]


DbOpt = Annotated[str, option(CLEAN["db"])]


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only: no progress bar, no info "
                                                              "logs.")]


SchemaOpt = Annotated[str | None, option(CLEAN["db_schema"])]


InputColumnOpt = Annotated[str, option(RETRAIN["input_column"])]


TargetColumnOpt = Annotated[str, option(RETRAIN["target_column"])]


def revert_hint(run_id: str, schema: str | None) -> str:
    """The command that undoes a run, with --schema when the run's tables are in one."""
    return f"undo with: strseq revert --db DB --run-id {run_id}" + (f" --schema {schema}" if schema else "")


def column_hint(exc: InputFileError, options: str) -> str:
    """An input file's error, with the option(s) that name its columns when it lacks one."""
    return f"{exc}; name the {'columns' if '/' in options else 'column'} with {options}" \
        if isinstance(exc, ColumnError) else str(exc)


def read_pairs_file(path: Path, max_len: int, input_column: str, target_column: str):
    """Pairs from a file (``data.files.read_pairs``), or one error line naming what is wrong."""
    from strseq_tasks.data.files import read_pairs

    try:
        return read_pairs(path, max_len, input_column, target_column)
    except InputFileError as exc:
        fail(column_hint(exc, "--input-column/--target-column"))


NameOpt = Annotated[str, option(RETRAIN["name"])]


def precision_line(info: dict) -> str:
    int8, refused = info.get("int8"), info.get("int8_refused")
    if int8:
        gate = int8["gate"]
        return (f"int8 graphs ({gate['changed']} of {gate['rows']} outputs differ from fp32; "
                f"exact match {gate['exact_int8']:.2%} vs {gate['exact_fp32']:.2%}); fp32 kept for --precision fp32")
    if refused:
        return f"fp32 graphs (int8 refused: {refused['reason']})"
    return "fp32 graphs"


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {mask_url(message)}", err=True)  # a URL from --db or STRSEQ_DB: never its password
    raise typer.Exit(code)


def check_output_option(option: str, output: Path | None, inputs=(), folder: bool = False, replaced: bool = True,
                        table: bool = False) -> None:
    """Refuse, before any work, an output that is one of ``inputs`` ((option, path) pairs), lies
    in or holds one, or cannot be written (see ``data.output_paths.check_output``), and a ``table``
    whose suffix names no format written (``check_table_suffix``); --force never overrides it."""
    if output is None:
        return
    try:
        check_output(option, output, inputs, folder=folder, replaced=replaced)
        if table:
            check_table_suffix(option, output)
    except OutputPathError as exc:
        fail(str(exc))


def known_inputs(paths: list[Path] | None) -> list[tuple[str, Path]]:
    return [("--known-values", p) for p in paths or []]


def write_output(option: str, path: Path, write) -> None:
    """``write()`` (atomic); a failure now (disk full, a folder removed since the check) is one
    error line, and the write left no partial file."""
    try:
        write()
    except OSError as exc:
        fail(f"{option} {path} could not be written ({exc}); nothing was written there")


def setup_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Prefect's API calls, one line each
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_theirs)
        # Prefect sets its own loggers to INFO and they reach this handler through the root logger,
        # whose level does not filter what a child passes on: --quiet filters here (on the stderr
        # handler basicConfig made, not on a handler someone else put on the root logger)
        if type(handler) is logging.StreamHandler:
            handler.setLevel(level)
            handler.setFormatter(_RunFormatter("%(levelname)s %(message)s"))
    for name in ("prefect.flow_runs", "prefect.task_runs"):  # Prefect's engine logs a run's failure here
        logging.getLogger(name).addFilter(_no_traceback_for_users_errors)
    logging.getLogger("prefect.task_runs").addFilter(_not_the_thread_timeout_advice)


def _not_the_thread_timeout_advice(record: logging.LogRecord) -> bool:
    """Prefect warns at every task with a timeout that runs outside the main thread; strseq's
    commands run flows in threads on purpose (`strseq demo`'s side-by-side retrains, `clean
    --partitions` on the thread pool), where the timeouts stay a backstop. The demo printed 48
    such lines. Only this advice is dropped, and only in strseq's commands."""
    return not (record.levelno == logging.WARNING and isinstance(record.msg, str)
                and record.msg.startswith("Timeout of %s seconds configured for this task, but the task is running "
                                          "in a worker thread"))


class _RunFormatter(logging.Formatter):
    """A line Prefect logs for a task or flow run names it, as Prefect's own console does: "INFO
    train-54e: Finished in state Completed()", not a retrain's bare "Finished in state" lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        run = getattr(record, "task_run_name", None) or getattr(record, "flow_name", None)
        return line.replace(" ", f" {run}: ", 1) if run else line


def _no_traceback_for_users_errors(record: logging.LogRecord) -> bool:
    """A flow or task run that failed on a ``StrseqError`` (the pairs failed validation, an export
    was refused) is logged as its one-line message, without the traceback: the command then
    prints the ``error:`` line. Any other exception is a bug and keeps its traceback."""
    if record.exc_info and isinstance(record.exc_info[1], StrseqError):
        record.exc_info, record.exc_text = None, None
    return True


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
        "harm_at_threshold": "harm at confidence >= threshold",
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


def read_known(paths: list[Path], column: str | None, max_distance: int, extra: list[str] = ()):
    """Known values from files (and ``extra`` values, e.g. the pairs' targets), or exit clearly."""
    from strseq_tasks.core.known import KnownValues
    from strseq_tasks.data.corpus import read_corpus

    if max_distance < 0:
        fail(f"--max-distance must be >= 0, got {max_distance}")
    try:
        report = read_corpus(paths, column, max_len=10_000)
    except InputFileError as exc:
        fail(f"--known-values: {column_hint(exc, '--known-column')}")
    known = KnownValues([*report.texts, *extra], max_distance=max_distance)
    log.info("known values: %d distinct (%d read from %s%s%s)", len(known), len(report.texts),
             ", ".join(map(str, paths)), f", {len(extra)} pair targets added" if extra else "",
             f"; {report.blank} blank skipped" if report.blank else "")
    return known


class RowsProgress:
    """A tqdm bar of rows on a terminal (the flow logs progress lines everywhere)."""

    def __init__(self, quiet: bool, desc: str):
        self.bar, self.desc = None, desc
        self.counts: dict[str, int] = {}
        self.show = not quiet and sys.stderr.isatty()

    def __enter__(self):
        return self

    def __call__(self, event: dict) -> None:
        if not self.show:
            return
        if self.bar is None:  # at the first batch: the rate does not count Prefect's start-up
            from tqdm import tqdm

            self.bar = tqdm(total=0, desc=self.desc, unit="row", file=sys.stderr, dynamic_ncols=True)
        if "total" in event:
            self.bar.total += event["total"]
            self.bar.refresh()
            return
        for key, value in event.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.bar.set_postfix({k: self.counts.get(k, 0) for k in ("changed", "review", "skipped")}, refresh=False)
        self.bar.update(event.get("rows_read", 0))

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def option_error(error: dict, specs: dict[str, Param]) -> str:
    """A pydantic error of a record built from ``specs`` as the option it concerns:
    '--max-harm: Input should be less than or equal to 1'."""
    message = error["msg"].removeprefix("Value error, ")
    loc = [str(part) for part in error["loc"] if part != "gates"]
    return mask_url(f"{cli_name(specs, loc[0])}: {message}" if loc else message)
