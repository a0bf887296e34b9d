"""Validate curated pairs and the column to clean with the Great Expectations suites in ``expectations/``.

The suites are reviewed JSON (``expectations/string_pairs.json``, ``records.json``), run by the
Checkpoints of a GX project folder (``data/gx_project.py``: ``$STRSEQ_GX_DIR``, else ``./gx``),
which store each validation result and rebuild the Data Docs; with ``ephemeral`` as the folder
they run in an ephemeral GX context and nothing is kept. Two columns are derived before
validation so that plain GX expectations can check them: ``row`` (where to look in the source)
and ``targets_per_input`` (the number of distinct targets of each row's input: above 1 means the
same input maps to two targets). Each expectation's ``notes`` (GX's field) say why it exists,
and reports quote them. Expectations with ``severity: warning`` are reported but do not fail;
any other failure raises ``PairsValidationError`` carrying the report.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import warnings
from dataclasses import dataclass, field

import pandas as pd

from strseq_tasks.data.gx_project import (
    StoredResult,
    open_project,
    project_dir,
    run_checkpoint,
    suites_dir,
    template_dir,
)
from strseq_tasks.errors import StrseqError
from strseq_tasks.params import CLEAN

SUITE_FILE = "string_pairs.json"
RECORDS_SUITE_FILE = "records.json"
MAX_LISTED = 20  # offending rows listed per expectation in reports


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    severity: str  # "critical" or "warning" (or "info")
    success: bool
    why: str  # the expectation's notes: why it exists, as a failure reads
    unexpected: int  # offending rows (0 for table-level checks)
    rows: list[dict] = field(default_factory=list)  # the first MAX_LISTED: {"row": ..., "input": ..., ...}
    observed: object = None  # table-level checks: what was measured (e.g. the row count)


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    rows: int
    checks: list[Check]
    stored: StoredResult | None = None  # where the GX project keeps it (None: ephemeral, nothing kept)

    @property
    def success(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity not in ("warning", "info")]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity in ("warning", "info")]

    def summary(self) -> str:
        """A few lines for a log: the verdict and each failed check with its first rows."""
        verdict = "passed" if self.success else "FAILED"
        lines = [f"validation of {self.rows} rows against suite {self.suite!r} {verdict}: "
                 f"{len(self.checks) - len(self.failures) - len(self.warnings)} of {len(self.checks)} "
                 f"expectations met, {len(self.failures)} failed, {len(self.warnings)} warnings"]
        for check in self.failures + self.warnings:
            label = "warning" if check in self.warnings else "failed"
            lines.append(f"  {label}: {_describe(check)}")
            for row in check.rows[:5]:
                lines.append(f"    row {row.get('row')}: " + ", ".join(f"{k}={v!r}" for k, v in row.items()
                                                                        if k != "row"))
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as markdown (a Prefect artifact): a table of checks, then offending rows."""
        verdict = "passed" if self.success else "**failed**"
        out = [f"### Validation of {self.rows} rows: {verdict}", "",
               f"Suite `{self.suite}` (`expectations/{self.suite}.json`)", *self._where(), "",
               "| expectation | column | severity | result | offending rows |", "|---|---|---|---|---:|"]
        for c in self.checks:
            result = "ok" if c.success else ("warning" if c.severity in ("warning", "info") else "**failed**")
            out.append(f"| {c.expectation} | {c.column or ''} | {c.severity} | {result} | {c.unexpected} |")
        for c in self.failures + self.warnings:
            out += ["", f"#### {_describe(c)}", ""]
            if c.rows:
                keys = list(c.rows[0])
                out += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                out += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in c.rows]
                if c.unexpected > len(c.rows):
                    out.append(f"\n... and {c.unexpected - len(c.rows)} more")
        return "\n".join(out)

    def _where(self) -> list[str]:
        if self.stored is None:
            return []
        return ["", f"GX validation result `{self.stored.result}` in `{self.stored.folder}`: "
                f"[its Data Docs page]({self.stored.page}), [every validation]({self.stored.index})"]

    def to_dict(self) -> dict:
        return {"suite": self.suite, "rows": self.rows, "success": self.success,
                "checks": [{**c.__dict__, "observed": _plain(c.observed)} for c in self.checks],
                **({"gx": self.stored.to_dict()} if self.stored else {})}


class ValidationFailed(StrseqError):
    """Data failed its expectation suite; ``report`` says where."""

    exit_code = 1  # the job ran and failed

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.summary())


class ValidationError(StrseqError, RuntimeError):
    """GX could not compute an expectation (a query it could not run): no verdict was reached."""

    exit_code = 1  # the job ran and failed


class PairsValidationError(ValidationFailed):
    """The curated pairs failed ``expectations/string_pairs.json``."""


class ColumnValidationError(ValidationFailed):
    """The column to clean failed ``expectations/records.json``: nothing was written."""


def _describe(check: Check) -> str:
    where = f" on {check.column}" if check.column else ""
    count = f" ({check.unexpected} rows)" if check.unexpected else ""
    observed = f" (observed {check.observed})" if check.observed is not None and not check.unexpected else ""
    return f"{check.why or check.expectation}{where}{count}{observed}"


def _cell(value: object) -> str:
    text = "null" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text.replace("|", "\\|").replace("\n", "\\n")


def _plain(value: object) -> object:
    """A JSON-friendly value: numpy scalars unwrapped, NaN as None, long strings shortened."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def _ordered(row: dict) -> dict:
    first = [k for k in ("row", "input", "target") if k in row]
    return {k: _plain(row[k]) for k in [*first, *(k for k in row if k not in first)]}


def with_derived_columns(pairs: pd.DataFrame) -> pd.DataFrame:
    """``row``, ``input``, ``target`` plus ``targets_per_input`` (distinct targets per input)."""
    frame = pairs[["row", "input", "target"]].copy()
    frame["targets_per_input"] = frame.groupby("input", dropna=False)["target"].transform("nunique").astype("int64")
    return frame


# GX evaluates $PARAMETER expressions with one module-global pyparsing parser and a shared
# expression stack: two validations in threads at once (the retrain flow validates its tasks
# concurrently) crash in pyparsing ("push_first() missing 1 required positional argument") or,
# worse, read each other's parameters. GX runs one validation at a time in a process.
_GX_LOCK = threading.Lock()


def _one_at_a_time(fn):
    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with _GX_LOCK:
            return fn(*args, **kwargs)
    return locked


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws a tqdm bar per validation unless told not to (TQDM_DISABLE does not reach it)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _load_suite(name: str):
    import great_expectations as gx

    return gx.ExpectationSuite(**json.loads((suites_dir() / name).read_text(encoding="utf-8")))


def _result_format(checkpoint: str):
    """The result format the project's Checkpoint asks for (the ephemeral mode asks for the same)."""
    return json.loads((template_dir() / "checkpoints" / f"{checkpoint}.json").read_text(encoding="utf-8"))[
        "result_format"]


def _checks(result) -> list[Check]:
    checks = []
    for item in result.results:
        config = item.expectation_config
        details = item.result or {}
        raised = _raised(item.exception_info)
        if raised:  # never a verdict on data GX could not read
            raise ValidationError(f"expectation {config.type} could not run: {raised.strip().splitlines()[0]}")
        rows = [_ordered(r) for r in (details.get("unexpected_index_list") or [])]
        rows.sort(key=lambda r: r.get("row", 0))
        checks.append(Check(
            expectation=config.type, column=config.kwargs.get("column"),
            severity=str(getattr(config.severity, "value", config.severity) or "critical").lower(),
            success=bool(item.success), why=_notes(config.notes),
            unexpected=int(details.get("unexpected_count") or 0), rows=rows[:MAX_LISTED],
            observed=details.get("observed_value"),
        ))
    return checks


def _notes(notes: str | list[str] | None) -> str:
    return " ".join(notes) if isinstance(notes, list) else notes or ""


VIEW = "strseq_validated"  # a temporary view on GX's own connections: the column, as 'value'
QUERY = f"SELECT value FROM {VIEW}"  # the query asset records.column of gx/great_expectations.yml


def _view_connections(engine, statement):
    """Connections for GX's engine, each holding ``VIEW`` (temporary: per session, gone when the
    session ends, nothing written to the database); ``creator.made`` keeps them for ``_close``.

    GX runs a query asset's text through ``sqlalchemy.text()``, stringifying and wrapping it again
    along the way: a quoted table or column name holding ``:name`` becomes a bind parameter, and
    one holding ``%`` is doubled for psycopg at every level (PostgreSQL then saw a table that does
    not exist, and GX reported 0 rows as a failed validation). The view's SQL goes to the driver
    as it is, with no parameters; GX only ever sees ``SELECT value FROM strseq_validated``."""
    select = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    if engine.dialect.paramstyle in ("format", "pyformat"):  # the compiler doubled % for a parameter pass
        select = select.replace("%%", "%")
    cargs, cparams = engine.dialect.create_connect_args(engine.url)

    def creator():
        connection = engine.dialect.connect(*cargs, **cparams)
        if engine.dialect.name == "sqlite":  # GX lists offending values: one not UTF-8 must not stop it
            connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        cursor = connection.cursor()
        cursor.execute(f"CREATE TEMPORARY VIEW {VIEW} AS {select}")
        cursor.close()
        connection.commit()
        creator.made.append(connection)
        return connection

    creator.made = []
    return creator


def _close(source, creator) -> None:
    """End every session GX opened, and the temporary views with them: GX's execution engine
    (GX's own way: its engine, and the connection it keeps open for SQLite), the data source's
    engine, then any connection an engine GX dropped along the way left open (unclosed, each
    validation kept a PostgreSQL session, and its view on the table, until the process ended)."""
    source.get_execution_engine().close()
    source.get_engine().dispose()
    for connection in creator.made:
        with contextlib.suppress(Exception):  # closed already, or broken: either way, gone
            connection.close()


def _raised(exception_info) -> str | None:
    """The message of an exception GX caught while computing an expectation's metrics, if any:
    GX keeps it on the result (flat, or per metric), and the result then reads as failed."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    return next((m for m in map(_raised, exception_info.values()) if m), None)


@_one_at_a_time
def validate_column(engine, table, column, max_len: int, min_non_null: float = CLEAN["min_non_null"].default,
                    min_within_length: float = CLEAN["min_within_length"].default, *,
                    gx_dir: str | os.PathLike | None = None, run_name: str | None = None) -> ValidationReport:
    """Run the records suite on ``table.column`` (SQLAlchemy objects) inside the database, through
    the Checkpoint ``records`` of the GX project ``gx_dir`` (``gx_project.project_dir``; the run is
    named ``run_name``, by default ``[SCHEMA.]TABLE.COLUMN``)."""
    import sqlalchemy as sa

    # one GX data source serves SQLite and PostgreSQL (the project's `records`): its type is GX's
    # generic `sql`, which GX questions in a warning on every run
    warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
    creator = _view_connections(engine, sa.select(column.label("value")).select_from(table))
    # the connections come from creator: GX gets the dialect alone, never the URL (nor its password)
    dialect_only = f"{engine.url.drivername}://"
    parameters = {"max_len": max_len, "min_non_null": min_non_null, "min_within_length": min_within_length}
    folder = project_dir(gx_dir)
    if folder is None:
        context, stored = _context(), None
        source = context.data_sources.add_sql("records", connection_string=dialect_only, kwargs={"creator": creator})
        try:
            batch = source.add_query_asset("column", query=QUERY).add_batch_definition_whole_table("all").get_batch()
            result = batch.validate(_load_suite(RECORDS_SUITE_FILE), expectation_parameters=parameters,
                                    result_format=_result_format("records"))
        finally:
            _close(source, creator)
    else:
        with open_project(folder) as context:
            source = context.data_sources.get("records")  # changed in memory only: the config keeps no URL
            source.connection_string, source.kwargs = dialect_only, {"creator": creator}
            try:
                result, stored = run_checkpoint(context, "records", run_name or _column_name(table, column),
                                                expectation_parameters=parameters)
            finally:
                _close(source, creator)
    checks = [Check(**{**c.__dict__, "column": column.name if c.column == "value" else c.column})
              for c in _checks(result)]
    total = max((int((item.result or {}).get("element_count") or 0) for item in result.results), default=0)
    return ValidationReport(result.suite_name, total, checks, stored)


def _column_name(table, column) -> str:
    return ".".join(filter(None, [table.schema, table.name, column.name]))


@_one_at_a_time
def validate_pairs(pairs: pd.DataFrame, max_len: int, min_pairs: int = 4, *, gx_dir: str | os.PathLike | None = None,
                   run_name: str | None = None) -> ValidationReport:
    """Run the pairs suite on a frame with columns ``row``, ``input``, ``target``, through the
    Checkpoint ``string_pairs`` of the GX project ``gx_dir`` (``gx_project.project_dir``; the run
    is named ``run_name``, say the model's name; by default ``pairs``)."""
    frame = with_derived_columns(pairs)
    parameters = {"max_len": max_len, "min_pairs": min_pairs}
    folder = project_dir(gx_dir)
    if folder is None:
        context, stored = _context(), None
        batch = (context.data_sources.add_pandas("pairs").add_dataframe_asset("pairs")
                 .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
        result = batch.validate(_load_suite(SUITE_FILE), expectation_parameters=parameters,
                                result_format=_result_format("string_pairs"))
    else:
        with open_project(folder) as context:
            result, stored = run_checkpoint(context, "string_pairs", run_name or "pairs", {"dataframe": frame},
                                            parameters)
    return ValidationReport(result.suite_name, len(frame), _checks(result), stored)
