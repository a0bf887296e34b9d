"""strseq's own log lines in the Prefect run that caused them.

The library logs to the ``strseq.*`` loggers ("int8 graphs refused", the ONNX parity result, a
cleaning batch retried), which Prefect does not send to its API: only its run loggers and the
loggers named in ``PREFECT_LOGGING_EXTRA_LOGGERS`` reach a flow run's logs in the UI. Rather than
ask every user to set that variable on every worker, importing strseq's flows or tasks adds
Prefect's own API handler (``APILogHandler``) to the ``strseq`` logger, as that setting would,
except that a line logged outside any flow or task run (``strseq train`` at a terminal) stays
where it was and raises no "no flow run id" warning.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

LOGGER = "strseq"


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, for records logged inside a flow or task run only."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        super().emit(record)


def send_strseq_logs_to_runs() -> None:
    """Add ``RunLogHandler`` to the ``strseq`` logger once (not when the user already named it in
    ``PREFECT_LOGGING_EXTRA_LOGGERS``: each line would reach the run twice)."""
    from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

    logger = logging.getLogger(LOGGER)
    if LOGGER in PREFECT_LOGGING_EXTRA_LOGGERS.value() or any(isinstance(h, RunLogHandler) for h in logger.handlers):
        return
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # else the root's WARNING would hide the INFO lines from the run
    logger.addHandler(RunLogHandler())
