"""The ``strseq`` command, one module per command group over ``common.py``.

``train``, ``pretrain``, ``export`` (train.py) import torch (the ``train`` extra); ``predict`` and
``evaluate`` (predict.py) run onnxruntime only; ``retrain``, ``models``, ``clean``, ``revert``,
``review``, ``demo`` and ``serve`` run the Prefect flows and the registry.
Exit codes: 0 success, 1 failure, 2 bad input or usage (one ``error:`` line, no traceback).
"""

import importlib.util
import sys

import typer

from strseq_tasks.cli.common import app
from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError

# Importing a command module registers its commands on ``app``, in the order `strseq --help` lists them.
# isort: off
from strseq_tasks.cli import train, predict, retrain, models, clean, review, demo, serve  # noqa: E402, F401
# isort: on


def main() -> None:
    """Run the command; an error a user can act on (``StrseqError``) is one ``error:`` line with
    its exit code, password masked, no traceback. Anything else is a bug and keeps its traceback."""
    _run_as_module()
    try:
        app()
    except StrseqError as exc:
        typer.echo(f"error: {mask_url(str(exc))}", err=True)
        sys.exit(exc.exit_code)


def _run_as_module() -> None:
    """Give the ``strseq`` console script the module identity of ``python -m strseq_tasks.cli``.
    The processes strseq starts with ``spawn`` (``predict --workers``, a local Dask cluster's
    workers) need nothing of the main module, but multiprocessing runs a main module without a
    ``__spec__`` again in each of them: the console script, importing the whole CLI (pandas,
    typer, prefect) on cores the work needs. A main module named ``....__main__`` it leaves
    alone. Only the console script (whose ``main`` is this function) is changed."""
    script = sys.modules.get("__main__")
    if script is not None and getattr(script, "__spec__", None) is None and getattr(script, "main", None) is main:
        script.__spec__ = importlib.util.find_spec("strseq_tasks.cli.__main__")
