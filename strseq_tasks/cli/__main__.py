"""``python -m strseq_tasks.cli``: the ``strseq`` command."""

from strseq_tasks.cli import main

main()
