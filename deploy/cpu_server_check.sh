#!/usr/bin/env bash
# What a CPU-only server installs: strseq with the flows extra and no torch.
# Creates a fresh venv (default /tmp/strseq-cpu-venv), installs this checkout without torch,
# proves torch is absent, predicts with a model bundle through onnxruntime, and prints the
# install's size.    usage: deploy/cpu_server_check.sh MODEL_DIR [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: deploy/cpu_server_check.sh MODEL_DIR [VENV]}
VENV=${2:-/tmp/strseq-cpu-venv}
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet ".[flows]"
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "FAIL: torch is installed in $VENV" >&2
  exit 1
fi
echo "torch: not installed (as intended)"
OUT=$(mktemp -d)
"$VENV/bin/strseq" predict --model "$MODEL" --input examples/names_inputs.csv --output "$OUT/predictions.csv" --quiet
echo "predicted $(($(wc -l < "$OUT/predictions.csv") - 1)) rows with onnxruntime: $OUT/predictions.csv"
echo "install size: $(du -sh "$VENV" | cut -f1) ($VENV)"
