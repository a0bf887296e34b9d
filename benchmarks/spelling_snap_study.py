"""How far a word list alone can tell a misspelling from a right word it lacks (the dictionary case).

    .venv/bin/python benchmarks/spelling_snap_study.py            # the spelling task's 1,000 test rows, seed 0
    .venv/bin/python benchmarks/spelling_snap_study.py --json benchmarks/results/spelling/snap-study.json

The ``spelling`` task (``benchmarks/tasks.py``) mixes real misspellings of listed words with right
words, a fifth of which the list lacks. Issue 21 asks for harm at most 1% (already-right words
changed) with exact match at least 88% at 2,000 pairs. A right word the list lacks is a string
that is not in the list, exactly as a misspelling is; what could tell them apart is how near and
how frequent the listed words around it are. This script needs no model: it applies the list-only
rule "snap to the most frequent listed word within D edits when it is among the R most frequent,
else keep the input" for a grid of R and D, and reports exact match and harm on the test rows, with
how many right words the list lacks and how many of those have a listed word within 2 edits.
What no (R, D) reaches is what a word list cannot give a model either: the model's own choice
between keeping and snapping is the other signal (docs/benchmarks.md, "The dictionary case").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tasks import spelling, spelling_list  # noqa: E402
from strseq_tasks.core.known import KnownValues, recase  # noqa: E402

RANKS = (None, 100_000, 50_000, 20_000, 10_000, 5_000)  # None: any listed word
DISTANCES = (2, 1)


def study(test_size: int, seed: int) -> dict:
    _, test = spelling(2000, test_size, seed)
    values = spelling_list()
    rank = {w: i for i, w in enumerate(values)}
    known = KnownValues(values)
    rows = [(src, tgt, known.near(src)) for src, tgt in test]
    right = [r for r in rows if r[0] == r[1]]
    unlisted = [r for r in right if r[2] is None or r[2].distance > 0]
    grid = []
    for most in RANKS:
        for distance in DISTANCES:
            exact = harm = 0
            for src, tgt, near in rows:
                out = src
                if near is not None and 0 < near.distance <= distance:
                    best = min(near.values, key=lambda v: rank.get(v.lower(), len(values)))
                    if most is None or rank.get(best.lower(), len(values)) < most:
                        out = recase(best, src) if best.islower() else best
                exact += out == tgt
                harm += src == tgt and out != tgt
            grid.append({"rank_below": most, "max_distance": distance, "exact_match": exact / len(rows),
                         "harm": harm / len(right)})
    return {"test_rows": len(rows), "right_words": len(right), "unlisted_right_words": len(unlisted),
            "unlisted_with_a_listed_word_within_2": sum(1 for r in unlisted if r[2] is not None), "grid": grid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    result = study(args.test_size, args.seed)
    print(f"{result['test_rows']} test rows, {result['right_words']} right words, {result['unlisted_right_words']} "
          f"of them not in the list, {result['unlisted_with_a_listed_word_within_2']} of those within 2 edits "
          "of a listed word\n")
    print("| snap to the most frequent listed word | within | exact match % | harm % |")
    print("|---|---:|---:|---:|")
    for g in result["grid"]:
        when = "always" if g["rank_below"] is None else f"if among the {g['rank_below']:,} most frequent"
        edits = "1 edit" if g["max_distance"] == 1 else f"{g['max_distance']} edits"
        print(f"| {when} | {edits} | {100 * g['exact_match']:.1f} | {100 * g['harm']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
