#!/usr/bin/env bash
# Set up .venv (if needed), then train on the shipped sample pairs and predict with onnxruntime.
# Everything is written under demo-output/ (a fresh copy each run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
OUT=demo-output
rm -rf "$OUT" && mkdir -p "$OUT"
echo
echo "== 1. train a normalizer on examples/names_pairs.csv (200 curated pairs)"
.venv/bin/strseq train --pairs examples/names_pairs.csv --out "$OUT/names-model" --seed 0
echo
echo "== 2. predict examples/names_inputs.csv with onnxruntime (no torch)"
.venv/bin/strseq predict --model "$OUT/names-model" --input examples/names_inputs.csv --output "$OUT/predictions.csv"
.venv/bin/python - "$OUT/predictions.csv" <<'PY'
import sys, pandas as pd
frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
print(frame[["input", "prediction", "confidence", "status"]].to_string(index=False))
PY
echo
echo "== 3. evaluate on held-out pairs (names never seen in training)"
.venv/bin/strseq evaluate --model "$OUT/names-model" --pairs examples/names_heldout.csv
echo
echo "model bundle: $OUT/names-model (manifest.json, vocab.json, encoder.onnx, decoder_step.onnx)"
