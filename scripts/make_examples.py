"""Regenerate the sample files in examples/ (deterministic): python scripts/make_examples.py"""

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.tasks import names  # noqa: E402

out = Path(__file__).resolve().parents[1] / "examples"
train, test = names(200, 120, seed=7)


def write(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


write(out / "names_pairs.csv", ["input", "target"], train)
write(out / "names_heldout.csv", ["input", "target"], test[:100])
write(out / "names_inputs.csv", ["input", "record_id"], [(a, 1000 + i) for i, (a, _) in enumerate(test[100:])])
print(f"wrote {len(train)} pairs, {len(test[:100])} held-out pairs, {len(test[100:])} inputs to {out}")
