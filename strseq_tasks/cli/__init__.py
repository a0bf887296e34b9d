"""The ``strseq`` command, one module per command group over ``common.py``.

``train``, ``pretrain``, ``export`` (train.py) import torch (the ``train`` extra); ``predict`` and
``evaluate`` (predict.py) run onnxruntime only; ``retrain``, ``models``, ``clean``, ``revert``,
``review``, ``demo`` and ``serve`` run the Prefect flows and the registry.
Exit codes: 0 success, 1 failure, 2 bad input or usage (one ``error:`` line, no traceback).
"""

from strseq_tasks.cli.common import app

# Importing a command module registers its commands on ``app``, in the order `strseq --help` lists them.
# isort: off
from strseq_tasks.cli import train, predict, retrain, models, clean, demo, serve  # noqa: E402, F401
# isort: on


def main() -> None:
    app()
