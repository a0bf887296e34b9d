"""The Great Expectations project a validation is stored in: a ``gx/`` folder a GX user knows.

``gx/`` at the top of the repository is the project as committed: ``great_expectations.yml``
(stores, a local Data Docs site, the two data sources), ``expectations/`` (a link to the reviewed
suites), a Validation Definition and a Checkpoint per suite. The package ships it (as
``strseq_tasks/gx``) as the template of every other project folder.

Which folder (``project_dir``): ``STRSEQ_GX_DIR``, else ``gx`` in the working directory (a
deployment's ``$STRSEQ_HOME``; in a checkout, the committed project). A folder that does not
exist is created from the template on first use, whole or not at all. ``STRSEQ_GX_DIR=ephemeral``
stores nothing (GX's ephemeral mode: tests, a one-off run). Every run first writes strseq's
reviewed suites into the folder, so its ``expectations/`` holds what ran (one source: the
reviewed JSON; a copy edited in the folder is replaced, with a warning). A Checkpoint run stores
its validation result in ``uncommitted/validations/`` and rebuilds the Data Docs in
``uncommitted/data_docs/local_site/``: night after night, a history to browse.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from strseq_tasks.data.safe_files import pid_alive, write_bytes_atomically
from strseq_tasks.errors import StrseqError

log = logging.getLogger("strseq.gx")

ENV = "STRSEQ_GX_DIR"
EPHEMERAL = "ephemeral"  # GX's own word for a context that keeps nothing
DEFAULT_DIR = "gx"
CONFIG = "great_expectations.yml"
UNCOMMITTED = "uncommitted"  # GX's folder for what a run writes (git-ignored)


class GxProjectError(StrseqError):
    """The GX project folder cannot be used (unreadable config, a Checkpoint missing, no write access)."""


@dataclass(frozen=True)
class StoredResult:
    """Where a Checkpoint run left its validation result."""

    folder: str  # the GX project folder
    result: str  # GX's key of the result: suite/run name/run time/batch (under uncommitted/validations/)
    page: str  # the result's Data Docs page (a file:// URL)
    index: str  # the Data Docs index, which lists every stored result

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def template_dir() -> Path:
    """The committed project: ``gx/`` of the checkout, reached as ``strseq_tasks/gx`` (a link
    there; a wheel holds a copy)."""
    return Path(str(files("strseq_tasks") / "gx"))


def suites_dir() -> Path:
    """The reviewed suites: ``expectations/`` of the checkout, reached as ``strseq_tasks/expectations``
    (a link there; a wheel holds a copy)."""
    return Path(str(files("strseq_tasks") / "expectations"))


def project_dir(folder: str | os.PathLike | None = None) -> Path | None:
    """The project folder to store validations in: ``folder``, else ``$STRSEQ_GX_DIR``, else
    ``./gx``; None for ``ephemeral`` (nothing stored)."""
    chosen = str(folder) if folder is not None else os.environ.get(ENV) or DEFAULT_DIR
    return None if chosen == EPHEMERAL else Path(chosen).expanduser().absolute()


def ensure_project(folder: Path) -> Path:
    """``folder`` as a GX project holding strseq's reviewed suites: created from the template if it
    does not exist (in a temporary folder beside it, then renamed: never half there)."""
    if not (folder / CONFIG).is_file():
        if folder.exists() and any(folder.iterdir()):
            raise GxProjectError(f"{folder} is not a GX project (no {CONFIG}) and not empty: set {ENV} to a GX "
                                 f"project folder, to a folder strseq may create, or to {EPHEMERAL} to store nothing")
        _create(folder)
    _write_suites(folder / "expectations")
    return folder


def _create(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        for old in folder.parent.glob(f".{folder.name}.creating-*"):  # left by a killed run
            if not pid_alive(int(old.name.rsplit("-", 1)[1])):
                shutil.rmtree(old, ignore_errors=True)
        tmp = folder.parent / f".{folder.name}.creating-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        # symlinks=False: the project gets the suites themselves, not links into the package
        shutil.copytree(template_dir(), tmp, symlinks=False, ignore=shutil.ignore_patterns(UNCOMMITTED))
        with contextlib.suppress(OSError):
            folder.rmdir()  # an empty folder the user made for it
        try:
            tmp.rename(folder)
        except OSError:  # another run created it meanwhile: use that one
            shutil.rmtree(tmp, ignore_errors=True)
            if not (folder / CONFIG).is_file():
                raise
    except OSError as exc:
        raise GxProjectError(f"cannot create the GX project folder {folder} ({exc.strerror or exc}): set {ENV} "
                             f"to a folder strseq may write, or to {EPHEMERAL} to store nothing") from exc
    log.info("created the GX project %s (Great Expectations: great_expectations.yml, checkpoints, suites)", folder)


def _write_suites(target: Path) -> None:
    for suite in sorted(suites_dir().glob("*.json")):
        reviewed, path = suite.read_bytes(), target / suite.name
        current = path.read_bytes() if path.is_file() else None
        if current == reviewed:
            continue
        if current is not None:
            log.warning("GX suite %s differed from strseq's reviewed %s and was replaced (edit the reviewed "
                        "suite in expectations/ of strseq's checkout)", path, suite.name)
        try:
            write_bytes_atomically(path, reviewed)
        except OSError as exc:
            raise GxProjectError(f"cannot write the GX suite {path} ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def open_project(folder: Path) -> Iterator[object]:
    """A GX file context on ``folder`` (created and given the reviewed suites first), held by this
    process alone: two jobs validating at once (the names and phones retrains) would otherwise
    rebuild the same Data Docs index at the same time."""
    import great_expectations as gx
    from great_expectations.exceptions import GreatExpectationsError

    ensure_project(folder)
    (folder / UNCOMMITTED).mkdir(exist_ok=True)
    with open(folder / UNCOMMITTED / ".strseq.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            context = gx.get_context(mode="file", context_root_dir=str(folder))
        except (GreatExpectationsError, OSError, ValueError) as exc:
            raise GxProjectError(f"GX project {folder}: {str(exc).splitlines()[0]}") from exc
        yield context


def checkpoint(context, name: str):
    """The project's Checkpoint ``name``, or a GxProjectError saying what is missing."""
    from great_expectations.exceptions import GreatExpectationsError

    try:
        return context.checkpoints.get(name)
    except (GreatExpectationsError, ValueError) as exc:
        raise GxProjectError(f"GX project {context.root_directory}: no usable Checkpoint {name!r} "
                             f"({str(exc).splitlines()[0]}); copy checkpoints/{name}.json from strseq's gx/ "
                             "folder, or start a new folder") from exc


def run_checkpoint(context, name: str, run_name: str, batch_parameters: dict | None = None,
                   expectation_parameters: dict | None = None):
    """Run Checkpoint ``name`` (its actions store the result and rebuild the Data Docs): its one
    suite validation result, and where it was stored."""
    import great_expectations as gx

    # the run name is a folder of the stores and part of a Data Docs URL: no '/', '%' or spaces
    run_id = gx.RunIdentifier(run_name=re.sub(r"[^\w.-]+", "-", run_name).strip("-") or "run")
    outcome = checkpoint(context, name).run(batch_parameters=batch_parameters,
                                            expectation_parameters=expectation_parameters, run_id=run_id)
    (key, result), = outcome.run_results.items()  # one Validation Definition per Checkpoint
    page = context.get_docs_sites_urls(resource_identifier=key, only_if_exists=False)
    index = context.get_docs_sites_urls(only_if_exists=False)
    stored = StoredResult(folder=str(context.root_directory), result="/".join(map(str, key.to_tuple())),
                          page=page[0]["site_url"] if page else "", index=index[0]["site_url"] if index else "")
    log.info("GX validation result %s stored in %s; Data Docs: %s", stored.result, stored.folder, stored.page)
    return result, stored
