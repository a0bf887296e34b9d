"""One root for every error a user can cause or act on: ``StrseqError``.

The command line catches ``StrseqError`` in one place (``cli.main``) and prints its message as one
``error:`` line, password masked, with ``exit_code`` (2: the input or the request is wrong and
says how; 1: the job ran and failed, e.g. the pairs failed validation or an export was refused).
Anything else is a bug and keeps its traceback. Prefect tasks retry only what ``transient``
marks as worth another try (a database that did not answer), never a mistake that would fail
the same way again.
"""

from __future__ import annotations


class StrseqError(Exception):
    """An error whose message tells the user what is wrong and what to do."""

    exit_code = 2  # 2: bad input or usage; 1: the job ran and failed
    transient = False  # True: the same call may work in a moment (a retry is worth it)
