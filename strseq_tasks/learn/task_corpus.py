"""Generated normalization tasks to pretrain the whole encoder-decoder on (``transfer.py``).

A model fine-tuned from these already knows how strings are copied, re-cased, re-ordered and
re-formatted, and what a month name, an ordinal day, an honorific or a country calling code
means, before it sees a team's pairs. Each *kind* draws a value, writes it the way people type
it (many layouts, several cases, labels, noise) and writes its one canonical target:

- ``dates`` -> ISO 8601 (``1969-05-16``): month names in several spellings and cases, ordinals,
  weekdays, times, numeric layouts (slashes month first, dots and dashes day first);
- ``names`` -> ``First Last``: person records in 20 locales (honorifics, suffixes, middle initials,
  particles, ``LAST, First``); a written-out middle name is kept (``First Middle Last``) or dropped
  with even odds, since teams disagree: their pairs decide, not pretraining;
- ``phones`` -> E.164: international, national (US) and digit-only layouts with labels;
- ``codes`` -> letter and digit groups in upper case joined by ``-`` (labels, other separators dropped);
- ``phrases`` -> words of nine languages in title case (stray quotes and punctuation dropped);
- ``clean``: an already-canonical value of any kind, unchanged (changing a clean value is harm).

Every component a value is made of passes ``keep`` (a date's ISO form, each first and last
name, a phone's E.164 form, every word): the build script keeps only one side of the column
benchmark's hash (``benchmarks/columns``), so no benchmark test value is ever pretrained on.
Locales and regions the benchmark holds out of its pairs (``EXCLUDED_LOCALES``,
``EXCLUDED_REGIONS``) are left out too. Deterministic under ``seed``. Needs ``faker``,
``phonenumbers`` and ``wordfreq`` (the ``bench`` extra); nothing is downloaded.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Callable, Iterator
from functools import cache

Pair = tuple[str, str]
Keep = Callable[[str], bool]

KINDS = {"dates": 0.24, "names": 0.22, "phones": 0.14, "codes": 0.12, "phrases": 0.16, "clean": 0.12}
LOCALES = ("en_US", "en_GB", "en_AU", "en_CA", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA", "es_ES",
           "es_MX", "it_IT", "nl_NL", "pl_PL", "pt_BR", "pt_PT", "sv_SE", "da_DK", "ro_RO")
EXCLUDED_LOCALES = ("cs_CZ", "hu_HU", "fi_FI", "ga_IE")  # the column benchmark's held-out locales
REGIONS = ("US", "US", "US", "US", "GB", "DE", "FR", "ES", "IT", "NL", "AU", "CA", "CH", "SE", "PL", "BE", "AT", "IE")
EXCLUDED_REGIONS = ("JP", "BR", "IN", "MX")  # the column benchmark's held-out regions
WORD_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv")
PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "du", "del", "della", "la", "le", "ten", "ter",
                       "zu", "dos", "das"})
HONORIFICS = ("Mr.", "Mrs.", "Ms.", "Miss", "Dr.", "Prof.", "Mr", "Mrs", "Dr", "Rev.", "Sir", "Mme", "Herr", "Frau")
SUFFIXES = ("Jr.", "Sr.", "II", "III", "IV", "Jr", "PhD", "MD", "Esq.")


def proper(name: str) -> str:
    """A name's clean spelling: each word capitalized after a start, apostrophe or hyphen
    (O'Connor, Smith-Jones), Mc + capital (McDonald), particles lower case before a surname."""
    words = name.split()
    out = []
    for i, word in enumerate(words):
        if len(words) > 1 and i < len(words) - 1 and word.lower() in PARTICLES:
            out.append(word.lower())
            continue
        chars, start = [], True
        for ch in word.lower():
            chars.append(ch.upper() if start else ch)
            start = ch in "'-\u2019"
        text = "".join(chars)
        if text.startswith("Mc") and len(text) > 2:
            text = "Mc" + text[2].upper() + text[3:]
        out.append(text)
    return " ".join(out)


def recase(text: str, rng: random.Random, weights=(0.55, 0.2, 0.15, 0.1)) -> str:
    """As written, upper, lower or str.title: columns come in every case."""
    return rng.choices((text, text.upper(), text.lower(), text.title()), weights)[0]


# -- noise: what typing and exports do to any value ---------------------------------------------
def noisy(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """``text`` with, at ``rate``, one or two of: padding, a doubled space, a tab or a non-breaking
    space for a space, no space after a comma, a final period, a typographic apostrophe."""
    if rng.random() >= rate:
        return text
    for _ in range(rng.choice((1, 1, 2))):
        roll = rng.randrange(7)
        spaces = [i for i, c in enumerate(text) if c == " "]
        if roll == 0:
            text = rng.choice((" ", "  ", "")) + text + rng.choice((" ", "  ", "\t"))
        elif roll == 1 and spaces:
            i = rng.choice(spaces)
            text = text[:i] + rng.choice(("  ", "   ")) + text[i + 1:]
        elif roll == 2 and spaces:
            i = rng.choice(spaces)
            text = text[:i] + rng.choice(("\t", "\u00a0")) + text[i + 1:]
        elif roll == 3 and ", " in text:
            text = text.replace(", ", ",", 1)
        elif roll == 4 and not text.endswith("."):
            text += "."
        elif roll == 5 and "'" in text:
            text = text.replace("'", "\u2019")
        elif roll == 6 and text and text[-1].isalnum():
            text += rng.choice((",", ";", " -"))
    return text


# -- dates ----------------------------------------------------------------------------------------
def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _date(rng: random.Random, keep: Keep) -> dt.date:
    first, last = dt.date(1900, 1, 1).toordinal(), dt.date(2069, 12, 31).toordinal()
    while True:
        day = dt.date.fromordinal(rng.randint(first, last))
        if keep(day.isoformat()):
            return day


def _two_digit_ok(d: dt.date) -> bool:
    """Two-digit years every convention reads alike (POSIX's 1969-2068, spreadsheets' 1930-2029,
    dateutil's 50 years either side of today): 00-25 as 20xx, 77-99 as 19xx."""
    return 2000 <= d.year <= 2025 or 1977 <= d.year <= 1999


def _month_word(d: dt.date, rng: random.Random) -> str:
    full = calendar.month_name[d.month]
    form = rng.choices(("full", "abbr", "abbr.", "sept"), (0.45, 0.3, 0.2, 0.05))[0]
    if form == "full":
        return full
    if form == "sept" and d.month == 9:
        return "Sept."
    return full[:3] + ("." if form != "abbr" and d.month != 5 else "")


def _day_word(d: dt.date, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return str(d.day)
    if roll < 0.65:
        return f"{d.day:02d}"
    text = _ordinal(d.day)
    return text if roll < 0.95 else text[:-2] + text[-2:].capitalize()


def _time(rng: random.Random) -> str:
    h, m, s = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    return rng.choice((f"{h:02d}:{m:02d}", f"{h:02d}:{m:02d}:{s:02d}", f"{(h - 1) % 12 + 1}:{m:02d} "
                       f"{'AM' if h < 12 else 'PM'}", f"{(h - 1) % 12 + 1}:{m:02d}{'am' if h < 12 else 'pm'}",
                       f"{h}h{m:02d}"))


def date_text(d: dt.date, rng: random.Random) -> str:
    """One way a person or a system writes ``d``."""
    two = _two_digit_ok(d) and rng.random() < 0.2
    year = (rng.choice(("", "'")) + f"{d.year % 100:02d}") if two else str(d.year)
    if rng.random() < 0.55:  # with a month name
        m, day = _month_word(d, rng), _day_word(d, rng)
        pattern = rng.choice(("{D} {M} {Y}", "{M} {D}, {Y}", "{M} {D} {Y}", "{D}-{M}-{Y}", "{D} {M}, {Y}",
                              "{D} of {M} {Y}", "{D}. {M} {Y}", "{M}-{D}-{Y}", "{D}/{M}/{Y}", "{Y} {M} {D}",
                              "{M} {D},{Y}", "{D}{M}{Y}"))
        if "of" in pattern and not day[-1].isalpha():
            pattern = "{D} {M} {Y}"
        if pattern.startswith("{Y}") and two:
            year = str(d.year)
        text = pattern.format(D=day, M=m, Y=year)
        text = rng.choices((text, text.upper(), text.lower()), (0.6, 0.25, 0.15))[0]
        if rng.random() < 0.15:
            wd = calendar.day_name[d.weekday()]
            wd = rng.choice((wd, wd[:3], wd.upper(), wd[:3].upper(), wd.lower()))
            text = f"{wd}{rng.choice((', ', ' ', ','))}{text}"
    else:  # numeric: slashes month first (US), dots and dashes day first, year first as ISO
        dd, mm = rng.choice(((str(d.day), str(d.month)), (f"{d.day:02d}", f"{d.month:02d}")))
        sep = rng.choice(("/", "/", ".", "-", "year first"))
        if sep == "/":
            text = f"{mm}/{dd}/{year}"
        elif sep in ".-":
            text = f"{dd}{sep}{mm}{sep}{year}"
        else:
            text = rng.choice((f"{d.year}/{d.month:02d}/{d.day:02d}", f"{d.year}.{d.month:02d}.{d.day:02d}",
                               f"{d.year}{d.month:02d}{d.day:02d}", f"{d.year}-{d.month}-{d.day}"))
    if rng.random() < 0.12:
        text += rng.choice((" ", ", ", " at ")) + _time(rng)
    return text


def date_pair(rng: random.Random, keep: Keep) -> Pair:
    d = _date(rng, keep)
    return date_text(d, rng), d.isoformat()


# -- person names ----------------------------------------------------------------------------------
@cache
def _faker(locale: str):
    from faker import Faker

    return Faker(locale)


def _person(rng: random.Random, keep: Keep) -> dict:
    while True:
        f = _faker(rng.choice(LOCALES))
        f.seed_instance(rng.randrange(2**32))
        first, last, middle = f.first_name(), f.last_name(), f.first_name()
        if " " in first or middle == first or not (keep(first) and keep(last) and keep(middle)):
            continue
        return {"first": proper(first), "last": proper(last), "middle": proper(middle)}


NAME_PATTERNS = ("{F} {L}", "{F} {L}", "{L}, {F}", "{L}, {F}", "{L},{F}", "{F} {I}. {L}", "{F} {I} {L}",
                 "{F} {M} {L}", "{H} {F} {L}", "{H} {F} {I}. {L}", "{L}, {H} {F}", "{F} {L}, {S}", "{F} {L} {S}",
                 "{L}; {F}", "{LU} {F}", "{L}, {F} {I}.", "{L}, {F} {M}", "{H} {L}, {F}")


def name_text(p: dict, rng: random.Random, pattern: str | None = None) -> str:
    pattern = pattern or rng.choice(NAME_PATTERNS)
    text = pattern.format(F=p["first"], L=p["last"], M=p["middle"], I=p["middle"][0], H=rng.choice(HONORIFICS),
                          S=rng.choice(SUFFIXES), LU=p["last"].upper())
    if "{LU}" in pattern:
        return text  # "LAST First" is told from "First Last" only by its case
    roll = rng.random()
    if roll < 0.15 and pattern.startswith("{L}"):
        return text.replace(p["last"], p["last"].upper(), 1)
    return rng.choices((text, text.upper(), text.lower(), text.title()), (0.45, 0.2, 0.25, 0.1))[0]


def name_pair(rng: random.Random, keep: Keep) -> Pair:
    p = _person(rng, keep)
    pattern = rng.choice(NAME_PATTERNS)
    text = name_text(p, rng, pattern)
    # a written-out middle name: no convention baked in. A prior that always dropped it cost the
    # classic names task (compound first names such as "María José", kept whole there) 9 points
    if "{M}" in pattern and rng.random() < 0.5:
        return text, f"{p['first']} {p['middle']} {p['last']}"
    return text, f"{p['first']} {p['last']}"


# -- phones ------------------------------------------------------------------------------------------
def _phone(rng: random.Random, keep: Keep) -> dict:
    import phonenumbers

    region = rng.choice(REGIONS)
    kind = rng.choice((phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE))
    example = phonenumbers.example_number_for_type(region, kind)
    digits = phonenumbers.national_significant_number(example)
    while True:
        head = rng.randint(2, 4)
        national = digits[:head] + "".join(str(rng.randrange(10)) for _ in digits[head:])
        number = phonenumbers.parse(f"+{example.country_code}{national}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number) and keep(e164):
            intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            nat = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            return {"e164": e164, "cc": str(example.country_code), "intl": intl, "national": nat, "region": region}


@cache
def _trunk_zero(region: str) -> bool:
    import phonenumbers

    return phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix == "0"


def phone_text(p: dict, rng: random.Random) -> str:
    groups = p["intl"].split()[1:]
    cc = p["cc"]
    styles = [p["intl"], p["e164"], f"00{cc} " + " ".join(groups), f"+{cc}-" + "-".join(groups),
              f"+{cc}." + ".".join(groups), f"(+{cc}) " + " ".join(groups), f"+{cc} " + "".join(groups)]
    if _trunk_zero(p["region"]) and not p["national"].startswith("0" + groups[0]):  # "(0)": a dropped trunk 0
        styles.append(f"+{cc} (0) " + " ".join(groups))
    if p["region"] == "US":
        nat = p["national"]
        plain = nat.replace("(", "").replace(") ", "-")
        styles += [nat, nat, plain, plain.replace("-", "."), plain.replace("-", " "), p["e164"][2:], "1-" + plain,
                   "1 " + nat, "+1 " + plain, nat.replace(") ", ")")]
    text = rng.choice(styles)
    label = rng.choices(("", "tel: ", "Tel. ", "Phone: ", "ph. ", "mob ", "M: ", "TEL ", "(w) ", "fax "),
                        (0.6, *[0.4 / 9] * 9))[0]
    if rng.random() < 0.04:
        text += rng.choice((" (home)", " (mobile)", " (work)"))
    return label + text


def phone_pair(rng: random.Random, keep: Keep) -> Pair:
    p = _phone(rng, keep)
    return phone_text(p, rng), p["e164"]


# -- codes and phrases ---------------------------------------------------------------------------
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def code_pair(rng: random.Random, keep: Keep) -> Pair:
    """A code of 2-4 letter or digit groups, typed with other separators, case and labels."""
    while True:
        groups = []
        for i in range(rng.randint(2, 4)):
            alpha = rng.random() < (0.6 if i == 0 else 0.35)
            size = rng.randint(1, 4) if alpha else rng.randint(1, 6)
            groups.append("".join(rng.choice(LETTERS if alpha else "0123456789") for _ in range(size)))
        target = "-".join(groups)
        if keep(target):
            break
    sep = rng.choice(("-", " ", "", ".", "/", "_", " - "))
    text = sep.join(groups) if sep or not any(
        a[-1].isdigit() == b[0].isdigit() for a, b in zip(groups, groups[1:])) else " ".join(groups)
    text = rng.choices((text, text.lower()), (0.6, 0.4))[0]
    label = rng.choices(("", "SKU ", "sku: ", "Part# ", "ref ", "code=", "item "), (0.7, *[0.05] * 6))[0]
    return label + text, target


@cache
def _words(language: str) -> tuple[str, ...]:
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list(language, 6000) if w.isalpha() and len(w) > 1)


def title_word(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def phrase_pair(rng: random.Random, keep: Keep) -> Pair:
    """1-4 words of one language, typed in any case with stray spacing -> Title Case."""
    words = _words(rng.choice(WORD_LANGUAGES))
    while True:
        chosen = [rng.choice(words) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
        if all(keep(w) for w in chosen):
            break
    target = " ".join(title_word(w) for w in chosen)
    text = rng.choices((" ".join(chosen), target, target.upper(), " ".join(chosen).upper()), (0.4, 0.1, 0.3, 0.2))[0]
    if rng.random() < 0.2:
        text = rng.choice(('"{}"', "'{}'", "({})", "[{}]", "{} ;", "- {}")).format(text)
    return text, target


DRAWERS: dict[str, Callable[[random.Random, Keep], Pair]] = {
    "dates": date_pair, "names": name_pair, "phones": phone_pair, "codes": code_pair, "phrases": phrase_pair}


def task_pairs(n: int, seed: int, keep: Keep = lambda text: True,
               kinds: dict[str, float] | None = None) -> Iterator[tuple[str, Pair]]:
    """``n`` (kind, (input, target)) draws, deterministic under ``seed``."""
    kinds = kinds or KINDS
    rng = random.Random(seed)
    names, weights = list(kinds), list(kinds.values())
    drawable = [k for k in DRAWERS if k in kinds]
    for _ in range(n):
        kind = rng.choices(names, weights)[0]
        if kind == "clean":
            _, target = DRAWERS[rng.choice(drawable)](rng, keep)
            yield kind, (target, target)
            continue
        text, target = DRAWERS[kind](rng, keep)
        yield kind, (noisy(text, rng), target)
