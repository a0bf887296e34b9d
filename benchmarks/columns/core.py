"""How a benchmark column is drawn: layouts with long-tailed frequencies, some held out of the
training pairs, noise the model was not built around, and values split from the pairs.

A *family* (``Family``) knows how to draw a clean value, how to write its target, and the
layouts a person types it in. ``draw`` turns a family into one benchmark split, the way a data
team meets a column:

- **Long tails.** The family's layouts are ranked in a seeded order and drawn with Zipf weights
  (``ZIPF``): a few are common, most are rare. About a fifth of them, never the most common one,
  are *held out*: they occur in the test column and never in the training pairs.
- **Values the pairs never show.** Every value component (a surname, a date, a street name, a
  product number) falls on one side of a fixed hash (``side``): training pairs draw from one
  side, the test column from the other. The same hash keeps the test side out of any data
  strseq pretrains on (``strseq_tasks`` must not draw from ``side(x) == "test"`` values; see
  benchmarks/columns/README.md). Some families also hold whole component *kinds* out (two name
  locales, brands of a catalogue the pairs never mention).
- **Noise.** Training pairs get the noise a team would curate (``SEEN_NOISE``, rarely); the test
  column also gets ``UNSEEN_NOISE`` (tabs, non-breaking and doubled spaces, a missing space after
  a comma, a stray final period, typographic apostrophes), which no part of strseq was designed
  around.
- **Clean rows.** A share of the test column is already clean: changing it is harm.

Each test row carries tags (``Row.tags``) for the report's breakdown: how often its layout and
its components occur in the training pairs (frequent: 3 or more, rare: 1-2, unseen: 0), its noise, and
whether it was clean. The tags are computed from the training pairs the split drew, so "unseen"
is a fact of this split, not a guess.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[str, str]
ZIPF = 1.1  # exponent of the layouts' frequencies: weight of rank r is 1 / r**ZIPF
HELD_OUT_SHARE = 0.2  # share of a family's layouts never in the training pairs
SIDE_SALT = "strseq-benchmark-columns-v1"


def side(component: str) -> str:
    """'test' or 'train': which side of the benchmark a value component belongs to (a fixed hash,
    case-insensitive, so "SMITH" and "Smith" fall together)."""
    digest = hashlib.sha256(f"{SIDE_SALT}:{component.casefold()}".encode()).digest()
    return "test" if digest[0] < 128 else "train"


@dataclass(frozen=True)
class Layout:
    name: str
    render: Callable[[Any, random.Random], str]  # (value, rng) -> the dirty string


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    value: Callable[[random.Random, str], Any]  # (rng, side) -> a value whose components are on that side
    target: Callable[[Any], str]  # the clean string
    layouts: Sequence[Layout]
    # (value, dirty string) -> the components whose training count is reported (a month as typed)
    parts: Callable[[Any, str], Sequence[str]] = lambda value, text: ()
    kind: Callable[[Any], str] = lambda value: ""  # a held-out kind of value ("unseen locale"), or ""
    clean_share: float = 0.1  # share of test rows (and training pairs) already clean
    noise_ok: Callable[[str], bool] = lambda text: True  # may noise touch this dirty string?


@dataclass
class Row:
    input: str
    target: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Split:
    family: str
    train: list[Pair]
    test: list[Pair]
    tags: list[dict[str, str]]  # one per test row
    layouts: dict[str, dict]  # name -> {"rank", "weight", "held_out", "train_rows"}
    train_clean: int = 0  # training pairs drawn clean (then perhaps given a stray space)


# -- noise --------------------------------------------------------------------------------------
def _trailing_space(text: str, rng: random.Random) -> str:
    return text + " " * rng.randint(1, 2)


def _leading_space(text: str, rng: random.Random) -> str:
    return " " + text


def _tab(text: str, rng: random.Random) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return text + "\t"
    i = rng.choice(spaces)
    return text[:i] + "\t" + text[i + 1:]


def _nbsp(text: str, rng: random.Random) -> str:
    return text.replace(" ", "\u00a0", 1) if " " in text else text


def _double_space(text: str, rng: random.Random) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return text
    i = rng.choice(spaces)
    return text[:i] + "  " + text[i + 1:]


def _no_space_after_comma(text: str, rng: random.Random) -> str:
    return text.replace(", ", ",") if ", " in text else text


def _final_period(text: str, rng: random.Random) -> str:
    return text if text.endswith(".") else text + "."


def _curly_apostrophe(text: str, rng: random.Random) -> str:
    return text.replace("'", "\u2019")


SEEN_NOISE: dict[str, Callable[[str, random.Random], str]] = {
    "trailing space": _trailing_space,
    "leading space": _leading_space,
}
UNSEEN_NOISE: dict[str, Callable[[str, random.Random], str]] = {
    "tab": _tab,
    "non-breaking space": _nbsp,
    "doubled space": _double_space,
    "no space after comma": _no_space_after_comma,
    "final period": _final_period,
    "typographic apostrophe": _curly_apostrophe,
}
TRAIN_NOISE_RATE = 0.05  # a curated pair with a stray space
TEST_SEEN_NOISE_RATE = 0.08
TEST_UNSEEN_NOISE_RATE = 0.25


def _noisy(text: str, kinds: dict, rng: random.Random) -> tuple[str, str]:
    """One noise kind that changes ``text`` (name, text), or ("", text) if none does."""
    names = list(kinds)
    rng.shuffle(names)
    for name in names:
        changed = kinds[name](text, rng)
        if changed != text:
            return name, changed
    return "", text


# -- the split ----------------------------------------------------------------------------------
def layout_plan(family: Family, seed: int) -> tuple[list[Layout], list[float], set[str]]:
    """The seed's ranking of the layouts, their Zipf weights and the held-out names."""
    rng = random.Random(f"{family.name}:layouts:{seed}")
    ranked = list(family.layouts)
    rng.shuffle(ranked)
    weights = [1.0 / (rank + 1) ** ZIPF for rank in range(len(ranked))]
    k = max(1, round(HELD_OUT_SHARE * len(ranked)))
    held = {ranked[i].name for i in rng.sample(range(1, len(ranked)), k)}
    return ranked, weights, held


def _row(family: Family, layouts, weights, rng: random.Random, which: str) -> tuple[Row, Any]:
    value = family.value(rng, which)
    layout = rng.choices(layouts, weights)[0]
    target = family.target(value)
    text = layout.render(value, rng)
    row = Row(text, target, {"layout_name": layout.name, "noise": "none", "clean": "no"})
    if rng.random() < family.clean_share:
        row.input, row.tags["clean"], row.tags["layout_name"] = target, "yes", "(clean)"
    if family.noise_ok(row.input):
        roll = rng.random()
        unseen_rate = TEST_UNSEEN_NOISE_RATE if which == "test" else 0.0
        seen_rate = TEST_SEEN_NOISE_RATE if which == "test" else TRAIN_NOISE_RATE
        if roll < unseen_rate:
            name, row.input = _noisy(row.input, UNSEEN_NOISE, rng)
            row.tags["noise"] = f"unseen: {name}" if name else "none"
        elif roll < unseen_rate + seen_rate:
            name, row.input = _noisy(row.input, SEEN_NOISE, rng)
            row.tags["noise"] = f"seen: {name}" if name else "none"
    return row, value


def _tier(count: int) -> str:
    return "unseen" if count == 0 else "rare (1-2)" if count <= 2 else "frequent (3+)"


def draw(family: Family, n_train: int, n_test: int, seed: int = 0) -> Split:
    """The training pairs and the test column of one seed (both deterministic under it)."""
    layouts, weights, held = layout_plan(family, seed)
    train_layouts = [(lay, w) for lay, w in zip(layouts, weights) if lay.name not in held]
    rng = random.Random(f"{family.name}:rows:{seed}")
    train: list[Pair] = []
    by_input: dict[str, str] = {}
    layout_count: Counter = Counter()
    part_count: Counter = Counter()
    guard = 0
    while len(train) < n_train:
        guard += 1
        if guard > 200 * (n_train + 10):
            raise RuntimeError(f"{family.name}: could not draw {n_train} distinct training pairs")
        row, value = _row(family, [lay for lay, _ in train_layouts], [w for _, w in train_layouts], rng, "train")
        if by_input.setdefault(row.input, row.target) != row.target or (row.input, row.target) in train:
            continue
        train.append((row.input, row.target))
        layout_count[row.tags["layout_name"]] += 1
        part_count.update(family.parts(value, row.input))
    train_targets = {t for _, t in train}
    test: list[Pair] = []
    tags: list[dict[str, str]] = []
    guard = 0
    while len(test) < n_test:
        guard += 1
        if guard > 200 * (n_test + 10):
            raise RuntimeError(f"{family.name}: could not draw {n_test} test rows")
        row, value = _row(family, layouts, weights, rng, "test")
        if row.target in train_targets or by_input.get(row.input, row.target) != row.target:
            continue
        by_input[row.input] = row.target
        name = row.tags.pop("layout_name")
        row.tags["layout"] = "clean" if name == "(clean)" else (
            "held out" if name in held else _tier(layout_count[name]))
        parts = family.parts(value, row.input)
        row.tags["components"] = _tier(min(part_count[p] for p in parts)) if parts else "n/a"
        row.tags["value kind"] = family.kind(value) or "seen kind"
        test.append((row.input, row.target))
        tags.append(row.tags)
    plan = {lay.name: {"rank": i + 1, "weight": round(w / sum(weights), 4), "held_out": lay.name in held,
                       "train_rows": layout_count[lay.name]} for i, (lay, w) in enumerate(zip(layouts, weights))}
    return Split(family.name, train, test, tags, plan, layout_count["(clean)"])
