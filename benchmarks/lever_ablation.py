"""Each kept lever's gain, per family and size, from the column benchmark's results files.

    .venv/bin/python benchmarks/lever_ablation.py            # the table, from benchmarks/results/columns/

Issue 21 asks for an ablation table (3 seeds) of every lever the defaults keep, at 50, 200 and
1,000 pairs. The cells come from ``column_accuracy.py`` runs at one code state, on the reported
draws (seeds 0-2), the default beside each lever turned off; the calibration terms, which only
order the rows, from ``calibration_study.py --leave-one-out`` on the default's rows:

    column_accuracy.py --sizes 50 200 --name ablation-default --rows DIR       # the default (+ its rows)
    column_accuracy.py --sizes 1000 --name ablation-1000-default --rows DIR
    column_accuracy.py --sizes 50 200 --set augment.recombine=0 --name ablation-no-recombine
    column_accuracy.py --sizes 1000 --set augment.recombine=0 --name ablation-1000-no-recombine
    column_accuracy.py --sizes 50 200 --families names addresses companies --set augment.letter_copies=0 \\
        --name ablation-no-letters                                              # on by itself only there
    column_accuracy.py --sizes 1000 --families names addresses companies --set augment.letter_copies=0 \\
        --name ablation-1000-no-letters
    calibration_study.py DIR --leave-one-out benchmarks/results/columns/calibration-terms.json

A gain is the default's figure minus the lever-off figure, in points, on the seeds both measured
(their number in brackets); from scratch is ``columns-pretrained-none.json`` against
``columns.json`` (the README's table, measured at other commits). ``--resume`` on any of the runs
adds the cells it lacks; the table shows what is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "columns"
SIZES = (50, 200, 1000)
# lever -> (the default's files, the lever-off files), each a results file per size group
LEVERS = {
    "compositional augmentation": (("ablation-default", "ablation-1000-default"),
                                   ("ablation-no-recombine", "ablation-1000-no-recombine")),
    "letter resampling": (("ablation-default", "ablation-1000-default"),
                          ("ablation-no-letters", "ablation-1000-no-letters")),
    "the pretrained model": (("columns",), ("columns-pretrained-none",)),
}
TERMS = ("novelty", "unseen characters", "words", "lost characters")  # calibration_study.TERMS' names


def cells(names: tuple[str, ...], folder: Path) -> dict[tuple, dict]:
    """The strseq rows of these results files, by (family, pairs, seed); a missing file adds none."""
    out = {}
    for name in names:
        path = folder / f"{name}.json"
        if path.exists():
            for row in json.loads(path.read_text())["rows"]:
                if row["method"] == "strseq":
                    out[(row["family"], row["pairs"], row["seed"])] = row
    return out


def gains(default: dict[tuple, dict], off: dict[tuple, dict], key: str = "exact_match") -> dict[tuple, tuple]:
    """Per (family, pairs): the mean gain in points over the seeds both measured, and their number."""
    paired = defaultdict(list)
    for cell in default.keys() & off.keys():
        paired[cell[:2]].append(100 * (default[cell][key] - off[cell][key]))
    return {group: (statistics.fmean(values), len(values)) for group, values in paired.items()}


def term_gains(path: Path) -> dict[str, dict[tuple, tuple]]:
    """Per calibration term: the default's coverage at 99% precision minus the coverage without it."""
    out: dict[str, dict[tuple, tuple]] = {}
    if not path.exists():
        return out
    for term in TERMS:
        paired = defaultdict(list)
        for cell in json.loads(path.read_text())["cells"].values():
            variants = cell["variants"]
            if f"without {term}" in variants:
                paired[(cell["family"], cell["pairs"])].append(
                    100 * (variants["default"]["coverage_at_99"] - variants[f"without {term}"]["coverage_at_99"]))
        out[term] = {group: (statistics.fmean(v), len(v)) for group, v in paired.items()}
    return out


def table(folder: Path = RESULTS) -> str:
    exact = {lever: gains(cells(on, folder), cells(off, folder)) for lever, (on, off) in LEVERS.items()}
    coverage = term_gains(folder / "calibration-terms.json")
    columns = [*(f"{lever}: exact match" for lever in LEVERS), *(f"{term} term: coverage at 99%" for term in TERMS)]
    lines = ["| family | pairs | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    groups = sorted({g for by in [*exact.values(), *coverage.values()] for g in by},
                    key=lambda g: (g[0], SIZES.index(g[1]) if g[1] in SIZES else g[1]))
    for group in groups:
        values = [*(exact[lever].get(group) for lever in LEVERS),
                  *(coverage.get(term, {}).get(group) for term in TERMS)]
        lines.append(f"| {group[0]} | {group[1]} | "
                     + " | ".join("" if v is None else f"{v[0]:+.1f} ({v[1]})" for v in values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folder of the results files")
    args = parser.parse_args()
    print("each lever's gain in points (the default minus the lever off), mean over the seeds both measured "
          "(how many):\n")
    print(table(args.results))


if __name__ == "__main__":
    main()
