"""Realistic dirty records, generated offline from data shipped in PyPI packages (no downloads).

Used by ``strseq demo`` and by the benchmarks (``benchmarks/tasks.py``). Each generator returns
``(train, test)`` lists of ``(dirty, clean)`` pairs, deterministic under a seed, with test
targets never seen in training and a share of test inputs that are already clean:

- ``names``: person names from Faker in ten Latin-script locales, in many layouts
  ("SMITH, John A.", "dr. john a smith", ...) -> "First Last";
- ``dates``: 24 date layouts (month names, ordinals, weekdays, dotted, slashed) -> ISO 8601;
- ``phones``: valid numbers from phonenumbers' metadata for eight regions, international and
  national layouts -> E.164.

Needs the ``demo`` extra (faker, phonenumbers): ``pip install 'strseq[demo]'``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

Pair = tuple[str, str]

NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR", "sv_SE")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "AU")


def split_by_target(make: Callable[[random.Random], Pair], n_train: int, n_test: int, seed: int,
                     clean_share: float) -> tuple[list[Pair], list[Pair]]:
    """Draw pairs until both sets are full; test targets are disjoint from training targets."""
    rng = random.Random(seed)
    train: list[Pair] = []
    test: list[Pair] = []
    train_targets: set[str] = set()
    test_targets: set[str] = set()
    inputs: dict[str, str] = {}
    while len(train) < n_train or len(test) < n_test:
        src, tgt = make(rng)
        if rng.random() < clean_share:
            src = tgt
        if inputs.get(src, tgt) != tgt:
            continue  # never two targets for one input
        to_test = len(test) < n_test and (len(train) >= n_train or rng.random() < 0.5)
        if to_test and tgt not in train_targets:
            test.append((src, tgt))
            test_targets.add(tgt)
        elif not to_test and tgt not in test_targets and len(train) < n_train:
            train.append((src, tgt))
            train_targets.add(tgt)
        else:
            continue
        inputs[src] = tgt
    return train, test


def names(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    from faker import Faker

    fakers = [Faker(loc) for loc in NAME_LOCALES]
    for i, f in enumerate(fakers):
        f.seed_instance(seed * 100 + i)
    honorifics = ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Dr", "Miss")

    def make(rng: random.Random) -> Pair:
        f = rng.choice(fakers)
        first, last = f.first_name(), f.last_name()
        initial = rng.choice("ABCDEFGHJKLMNPRSTW")
        hon = rng.choice(honorifics)
        layouts = (
            f"{last.upper()}, {first}", f"{last}, {first} {initial}.", f"{first.lower()} {last.lower()}",
            f"{first.upper()} {last.upper()}", f"{hon} {first} {last}", f"{hon} {first} {initial}. {last}",
            f"{first} {initial} {last}", f"{last.upper()}, {first.upper()} {initial}",
            f"{hon.lower()} {first.lower()} {initial.lower()} {last.lower()}", f"  {first}  {last} ",
            f"{last}, {first}", f"{first} {initial}. {last.upper()}",
        )
        return rng.choice(layouts), f"{first} {last}"

    return split_by_target(make, n_train, n_test, seed, clean_share=0.08)


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


DATE_LAYOUTS: tuple[Callable[[dt.date], str], ...] = (
    lambda d: d.strftime("%d.%m.%Y"),
    lambda d: d.strftime("%m/%d/%Y"),
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: d.strftime("%d %b %Y"),
    lambda d: d.strftime("%d %B %Y"),
    lambda d: d.strftime("%b %d, %Y"),
    lambda d: d.strftime("%B %d, %Y"),
    lambda d: f"{d.strftime('%B')} {d.day}, {d.year}",
    lambda d: d.strftime("%Y/%m/%d"),
    lambda d: d.strftime("%Y%m%d"),
    lambda d: d.strftime("%d-%b-%Y").upper(),
    lambda d: d.strftime("%d-%b-%Y"),
    lambda d: d.strftime("%A, %B %d, %Y"),
    lambda d: d.strftime("%a %d %b %Y"),
    lambda d: f"{d.day} {d.strftime('%B')} {d.year}",
    lambda d: f"{_ordinal(d.day)} of {d.strftime('%B')} {d.year}",
    lambda d: f"{d.strftime('%B')} {_ordinal(d.day)}, {d.year}",
    lambda d: d.strftime("%Y.%m.%d"),
    lambda d: d.strftime("%Y-%m-%dT00:00:00"),
    lambda d: d.strftime("%d/%b/%Y"),
    lambda d: d.strftime("%b. %d %Y"),
    lambda d: d.strftime("%d %B, %Y").lower(),
    lambda d: d.strftime("%Y-%m-%d %H:%M"),
    lambda d: f"{d.day}.{d.month}.{d.year}",
)


def dates(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    start = dt.date(1940, 1, 1).toordinal()
    span = dt.date(2035, 12, 31).toordinal() - start

    def make(rng: random.Random) -> Pair:
        day = dt.date.fromordinal(start + rng.randrange(span))
        return rng.choice(DATE_LAYOUTS)(day), day.isoformat()

    return split_by_target(make, n_train, n_test, seed, clean_share=0.05)


def phones(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    import phonenumbers as pn

    fmt = pn.PhoneNumberFormat

    def number(rng: random.Random):
        while True:
            region = rng.choice(PHONE_REGIONS)
            kind = rng.choice([pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE])
            example = pn.example_number_for_type(region, kind)
            # the national significant number keeps Italy's leading zero, which national_number drops
            digits = pn.national_significant_number(example)
            for _ in range(50):
                keep = min(len(digits), 3)
                candidate = digits[:keep] + "".join(rng.choice("0123456789") for _ in digits[keep:])
                num = pn.parse("+" + str(example.country_code) + candidate)
                if pn.is_valid_number(num):
                    return region, num

    def make(rng: random.Random) -> Pair:
        region, num = number(rng)
        e164 = pn.format_number(num, fmt.E164)
        intl = pn.format_number(num, fmt.INTERNATIONAL)
        layouts = [intl, "00" + intl[1:], intl.replace(" ", "-"), intl.replace(" ", "."),
                   intl.replace(" ", ""), "(" + intl[: intl.index(" ")] + ")" + intl[intl.index(" "):]]
        if region in ("US", "GB"):
            national = pn.format_number(num, fmt.NATIONAL)
            layouts += [national, national.replace(" ", "-"), national.replace(" ", "")]
        return rng.choice(layouts), e164

    return split_by_target(make, n_train, n_test, seed, clean_share=0.05)


