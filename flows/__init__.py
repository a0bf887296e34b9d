"""strseq's Prefect flows (installed as ``strseq_tasks.flows``): ``retrain`` and ``clean``."""
