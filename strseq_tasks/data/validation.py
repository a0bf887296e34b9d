"""Validate curated pairs with the Great Expectations suite kept in ``expectations/``.

The suite is reviewed JSON (``expectations/string_pairs.json``) loaded into an ephemeral GX
context at run time; nothing GX writes is kept. Two columns are derived before validation so
that plain GX expectations can check them: ``row`` (where to look in the source) and
``targets_per_input`` (the number of distinct targets of each row's input: above 1 means the
same input maps to two targets). Expectations with ``severity: warning`` are reported but do
not fail; any other failure raises ``PairsValidationError`` carrying the report.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pandas as pd

from strseq_tasks.errors import StrseqError
from strseq_tasks.params import CLEAN

SUITE_FILE = "string_pairs.json"
RECORDS_SUITE_FILE = "records.json"
MAX_LISTED = 20  # offending rows listed per expectation in reports


def suites_dir() -> Path:
    """The suites: ``expectations/`` of the checkout, reached as ``strseq_tasks/expectations``
    (a link there; a wheel holds a copy)."""
    return Path(str(files("strseq_tasks") / "expectations"))


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    severity: str  # "critical" or "warning" (or "info")
    success: bool
    why: str
    unexpected: int  # offending rows (0 for table-level checks)
    rows: list[dict] = field(default_factory=list)  # the first MAX_LISTED: {"row": ..., "input": ..., ...}
    observed: object = None  # table-level checks: what was measured (e.g. the row count)


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    rows: int
    checks: list[Check]

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
               f"Suite `{self.suite}` (`expectations/{self.suite}.json`)", "",
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

    def to_dict(self) -> dict:
        return {"suite": self.suite, "rows": self.rows, "success": self.success,
                "checks": [{**c.__dict__, "observed": _plain(c.observed)} for c in self.checks]}


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


def _load_suite(path: Path):
    import great_expectations as gx

    return gx.ExpectationSuite(**json.loads(Path(path).read_text(encoding="utf-8")))


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
            success=bool(item.success), why=(config.meta or {}).get("why", ""),
            unexpected=int(details.get("unexpected_count") or 0), rows=rows[:MAX_LISTED],
            observed=details.get("observed_value"),
        ))
    return checks


VIEW = "strseq_validated"  # a temporary view on GX's own connections: the column, as 'value'


def _view_connections(engine, statement):
    """Connections for GX's engine, each holding ``VIEW`` (temporary: per session, gone when GX's
    engine is disposed, nothing written to the database).

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
        return connection

    return creator


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
                    min_within_length: float = CLEAN["min_within_length"].default,
                    suite_path: Path | None = None) -> ValidationReport:
    """Run the records suite on ``table.column`` (SQLAlchemy objects) inside the database."""
    import sqlalchemy as sa

    context = _context()
    add = {"sqlite": context.data_sources.add_sqlite, "postgresql": context.data_sources.add_postgres}.get(
        engine.dialect.name, context.data_sources.add_sql)
    creator = _view_connections(engine, sa.select(column.label("value")).select_from(table))
    source = add("strseq", connection_string=engine.url.render_as_string(hide_password=False),
                 kwargs={"creator": creator})
    try:
        batch = (source.add_query_asset("column", query=f"SELECT value FROM {VIEW}")
                 .add_batch_definition_whole_table("all").get_batch())
        suite = _load_suite(suite_path or suites_dir() / RECORDS_SUITE_FILE)
        result = batch.validate(suite, expectation_parameters={"max_len": max_len, "min_non_null": min_non_null,
                                                               "min_within_length": min_within_length})
    finally:
        source.get_engine().dispose()  # the temporary views go with GX's sessions
    checks = [Check(**{**c.__dict__, "column": column.name if c.column == "value" else c.column})
              for c in _checks(result)]
    total = max((int((item.result or {}).get("element_count") or 0) for item in result.results), default=0)
    return ValidationReport(suite.name, total, checks)


@_one_at_a_time
def validate_pairs(pairs: pd.DataFrame, max_len: int, min_pairs: int = 4, suite_path: Path | None = None
                   ) -> ValidationReport:
    """Run the pairs suite on a frame with columns ``row``, ``input``, ``target``."""
    context = _context()
    suite = _load_suite(suite_path or suites_dir() / SUITE_FILE)
    frame = with_derived_columns(pairs)
    batch = (context.data_sources.add_pandas("strseq").add_dataframe_asset("pairs")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    result = batch.validate(suite, expectation_parameters={"max_len": max_len, "min_pairs": min_pairs},
                            result_format={"result_format": "COMPLETE",
                                           "unexpected_index_column_names": ["row", "input", "target"]})
    checks = _checks(result)
    return ValidationReport(suite.name, len(frame), checks)
