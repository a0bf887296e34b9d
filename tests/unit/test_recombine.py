"""Compositional augmentation keeps labels right: a swapped unit brings its own target along,
and nothing is swapped that the pairs do not agree on."""

from __future__ import annotations

import calendar
import random
import re

from strseq_tasks.core.augment import AugmentConfig, NoiseKinds, augment
from strseq_tasks.core.recombine import lexicon, recombine, units

MONTHS = {m.casefold(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS |= {m.casefold(): i for i, m in enumerate(calendar.month_abbr) if m}


def _date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    layouts = ("{d} {M} {y}", "{M} {d}, {y}", "{W}, {d} {M} {y}", "{d}-{M}-{y}")
    out = []
    for _ in range(n):
        month, day, year = rng.randint(1, 12), rng.randint(1, 28), rng.randint(1950, 2020)
        name = rng.choice((calendar.month_name, calendar.month_abbr))[month]
        name = rng.choice((name, name.upper(), name.lower()))
        weekday = rng.choice(calendar.day_abbr)
        out.append((rng.choice(layouts).format(d=day, M=name, y=year, W=weekday), f"{year}-{month:02d}-{day:02d}"))
    return out


def test_units_of_plain_pairs():
    def show(src, tgt, known=None):
        found = units(src, tgt, known)
        return None if found is None else [(u.source.text, u.target.text if u.target else "") for u in found]

    assert show("05 Jan 2020", "2020-01-05") == [("Jan", "01")]
    assert show("SMITH, Dr John", "John Smith") == [("Dr", "")]  # a deletion: found, never swapped
    assert show("123 N. Maple Street, Apt 5B", "123 N Maple St Apt 5B") == [("Street", "St")]
    assert show("Phone: (201) 555-0123", "+12015550123") == [("Phone", "")]  # the digits are copied
    assert show("5th March '84", "1984-03-05") == [("March", "03")]  # "th" is layout, '84 a year
    assert show("01 Jan 2001", "2001-01-01") is None  # which "01" is the month: ambiguous, skipped
    assert show("Wed, 05 Jan 2020", "2020-01-05") is None
    assert show("Wed, 05 Jan 2020", "2020-01-05", {"jan": "01"}) == [("Jan", "01"), ("Wed", "")]


def test_recombined_dates_are_still_right():
    pairs = _date_pairs(300)
    lex = lexicon(pairs)
    rng = random.Random(1)
    made = 0
    for src, tgt in pairs:
        new = recombine(src, tgt, lex, rng)
        if new is None:
            continue
        made += 1
        new_src, new_tgt = new
        word = next(w for w in re.findall(r"[A-Za-z]+", new_src) if w.casefold() in MONTHS
                    and w.casefold() not in {d.casefold() for d in calendar.day_abbr})
        day, year = re.findall(r"\d+", new_src)
        assert new_tgt == f"{year}-{MONTHS[word.casefold()]:02d}-{int(day):02d}", (src, tgt, new)
        assert new_src != src
    assert made > 200  # weekday layouts too, once "jan" -> "01" is known from the others


def test_a_swapped_source_takes_the_case_it_replaces():
    pairs = [("05 JAN 2020", "2020-01-05"), ("07 march 2011", "2011-03-07"), ("09 Sept 1999", "1999-09-09"),
             ("15 Jan 2021", "2021-01-15"), ("17 March 2012", "2012-03-17"), ("19 sept 1998", "1998-09-19")]
    lex = lexicon(pairs)
    for seed in range(20):
        src, _ = recombine(*pairs[0], lex, random.Random(seed))
        assert src.split()[1] in ("MARCH", "SEPT")


def test_only_units_seen_twice_alike_are_swapped():
    assert lexicon([("05 Jan 2020", "2020-01-05"), ("07 Mar 2011", "2011-03-07")]).by_slot == {}


def test_middle_names_and_one_off_pairings_are_not_swapped():
    pairs = [("Dr John Smith", "John Smith"), ("Dr Ann Lee", "Ann Lee"), ("Mrs Kim Ito", "Kim Ito"),
             ("Mrs Eva Ruiz", "Eva Ruiz"), ("Rouven Paul Kern", "Rouven Kern"), ("Lia Maria Voss", "Lia Voss"),
             ("2 1/2 lbs (net)", "2.5 lb"), ("3 kilo", "3 kg"), ("4 kilo", "4 kg"), ("7 lbs", "7 lb")]
    lex = lexicon(pairs)
    assert not [key for entries in lex.by_slot.values() for key, value in entries if not value]  # no deletions
    for seed in range(30):
        assert recombine("Rouven Paul Kern", "Rouven Kern", lex, random.Random(seed)) is None
        assert recombine("Dr Ann Lee", "Ann Lee", lex, random.Random(seed)) is None
        # "lbs" -> "lb" is agreed on (twice, and an abbreviation); "(net)" paired with "5" is not
        assert recombine("2 1/2 lbs (net)", "2.5 lb", lex, random.Random(seed)) == ("2 1/2 kilo (net)", "2.5 kg")


def test_augment_adds_recombined_pairs_only_when_asked():
    pairs = _date_pairs(60)
    kinds = NoiseKinds(False, False, False)
    plain = augment(pairs, AugmentConfig(recombine=0, identity=False), seed=0, kinds=kinds)
    more = augment(pairs, AugmentConfig(recombine=2, identity=False), seed=0, kinds=kinds)
    assert set(plain) == set(pairs)
    assert set(pairs) < set(more) and len(more) > 1.5 * len(pairs)
