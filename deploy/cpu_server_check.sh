#!/usr/bin/env bash
# What a CPU-only server installs: strseq with the flows extra and no torch.
# Creates a fresh venv (default /tmp/strseq-cpu-venv), installs this checkout without torch,
# proves torch is absent, predicts with a model bundle through onnxruntime, runs the cleaning
# flow on a small SQLite table (Prefect's local mode), and prints the install's size.
#     usage: deploy/cpu_server_check.sh MODEL_DIR [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: deploy/cpu_server_check.sh MODEL_DIR [VENV]}
VENV=${2:-/tmp/strseq-cpu-venv}
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
# (grep: some machines' pip configuration warns about every package it looks up)
"$VENV/bin/pip" install --quiet --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
"$VENV/bin/pip" install --quiet ".[flows]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "FAIL: torch is installed in $VENV" >&2
  exit 1
fi
echo "torch: not installed (as intended)"
OUT=$(mktemp -d)
"$VENV/bin/strseq" predict --model "$MODEL" --input examples/names_inputs.csv --out "$OUT/predictions.csv" --quiet
echo "predicted $(($(wc -l < "$OUT/predictions.csv") - 1)) rows with onnxruntime: $OUT/predictions.csv"
"$VENV/bin/python" - "$OUT/crm.db" <<'PY'
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
with open("examples/names_inputs.csv", newline="", encoding="utf-8") as f:
    db.executemany("INSERT INTO customers (name) VALUES (?)", [(r["input"],) for r in csv.DictReader(f)])
db.commit()
PY
PREFECT_HOME="$OUT/prefect" "$VENV/bin/strseq" clean --db "sqlite:///$OUT/crm.db" --table customers --key id \
  --column name --model "$MODEL" --create-output-column
echo "cleaned customers.name into name_clean with the Prefect flow, torch-free: $OUT/crm.db"
echo "install size: $(du -sh "$VENV" | cut -f1) ($VENV)"
