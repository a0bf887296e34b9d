#!/usr/bin/env bash
# Create .venv and install strseq with everything needed to train, test and benchmark.
# torch is installed first and pinned: the CPU wheel of torch 2.13.0 is what pip finds on
# these machines; any other spec makes pip fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
# every package at the version deploy/constraints.txt pins (scripts/lock.sh writes it): the same install on every machine
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[train,flows,dask,demo,bench,test,parquet]" \
  -c deploy/constraints.txt
echo "strseq installed in .venv ($(.venv/bin/python -c 'import strseq_tasks; print(strseq_tasks.__version__)'))"
