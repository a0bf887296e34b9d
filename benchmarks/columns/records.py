"""Person-record columns: dates -> ISO 8601, person names -> ``First Last``, phones -> E.164.

Wider than the classic tasks (benchmarks/tasks.py) on purpose: dozens of layouts per family
drawn from combinations (month spellings, cases, ordinals, two-digit years, weekdays, times;
honorifics before and after a comma, particles, suffixes, middle names; phone prefixes and
separators), and value kinds held out of the training pairs (name locales, phone regions).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import random
import re
from functools import cache

from benchmarks.columns.core import Family, Layout, side

# -- dates --------------------------------------------------------------------------------------
FIRST_DAY = dt.date(1930, 1, 1).toordinal()  # two-digit years read as 1930-2029
LAST_DAY = dt.date(2029, 12, 31).toordinal()


def _date(rng: random.Random, which: str) -> dt.date:
    while True:
        day = dt.date.fromordinal(rng.randint(FIRST_DAY, LAST_DAY))
        if side(day.isoformat()) == which:
            return day


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _case(text: str, case: str) -> str:
    return {"title": text, "upper": text.upper(), "lower": text.lower()}[case]


def _month(d: dt.date, form: str) -> str:
    full = calendar.month_name[d.month]
    return {"full": full, "abbr": full[:3], "abbr.": full[:3] + ("." if d.month != 5 else ""),
            "sept": "Sept." if d.month == 9 else full[:3] + ("." if d.month != 5 else "")}[form]


def _day(d: dt.date, form: str) -> str:
    return {"d": str(d.day), "dd": f"{d.day:02d}", "ord": _ordinal(d.day),
            "ORD": _ordinal(d.day)[:-2] + _ordinal(d.day)[-2:].capitalize()}[form]


def _year(d: dt.date, form: str) -> str:
    return {"yyyy": str(d.year), "yy": f"{d.year % 100:02d}", "'yy": f"'{d.year % 100:02d}"}[form]


def _time(rng: random.Random, form: str) -> str:
    h, m, s = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    return {"24h": f"{h:02d}:{m:02d}", "ampm": f"{(h - 1) % 12 + 1}:{m:02d} {'AM' if h < 12 else 'PM'}",
            "ampm-lower": f"{(h - 1) % 12 + 1}:{m:02d}{'am' if h < 12 else 'pm'}", "secs": f"{h:02d}:{m:02d}:{s:02d}",
            "iso": f"T{h:02d}:{m:02d}:{s:02d}Z"}[form]


NAMED = {  # patterns with a month name: M month, D day, Y year, W weekday, T time
    "D M Y": "{D} {M} {Y}", "M D, Y": "{M} {D}, {Y}", "M D Y": "{M} {D} {Y}", "D-M-Y": "{D}-{M}-{Y}",
    "W, M D, Y": "{W}, {M} {D}, {Y}", "W D M Y": "{W} {D} {M} {Y}", "D of M Y": "{D} of {M} {Y}",
    "M D, Y T": "{M} {D}, {Y} {T}", "D/M/Y": "{D}/{M}/{Y}", "Y M D": "{Y} {M} {D}", "M-D-Y": "{M}-{D}-{Y}",
    "D M, Y": "{D} {M}, {Y}", "W D M Y T": "{W} {D} {M} {Y} {T}",
}
NUMERIC = {  # (pattern, day-month order); slashes are US (month first), dots and dashes day first
    "dd.mm.yyyy": "{dd}.{mm}.{yyyy}", "d.m.yyyy": "{d}.{m}.{yyyy}", "mm/dd/yyyy": "{mm}/{dd}/{yyyy}",
    "m/d/yy": "{m}/{d}/{yy}", "m/d/yyyy": "{m}/{d}/{yyyy}", "yyyy-mm-dd Thh:mm:ss": "{yyyy}-{mm}-{dd}{T}",
    "yyyy-mm-dd hh:mm": "{yyyy}-{mm}-{dd} {T}", "yyyymmdd": "{yyyy}{mm}{dd}", "yyyy/mm/dd": "{yyyy}/{mm}/{dd}",
    "dd-mm-yyyy": "{dd}-{mm}-{yyyy}", "dd.mm.yy": "{dd}.{mm}.{yy}", "yyyy.mm.dd": "{yyyy}.{mm}.{dd}",
    "mm/dd/yy hh:mm": "{mm}/{dd}/{yy} {T}", "d-m-yyyy": "{d}-{m}-{yyyy}",
}


def _named_layout(pattern: str, month: str, day: str, year: str, case: str, weekday: str, time: str) -> Layout:
    template = NAMED[pattern]

    def render(d: dt.date, rng: random.Random) -> str:
        wd = calendar.day_name[d.weekday()]
        text = template.format(M=_month(d, month), D=_day(d, day), Y=_year(d, year),
                               W=wd if weekday == "full" else wd[:3], T=_time(rng, time) if "{T}" in template else "")
        return _case_keep_ordinal(text, case) if day == "ORD" else _case(text, case)

    name = f"{pattern} | month {month} | day {day} | year {year} | {case}"
    name += (f" | weekday {weekday}" if "{W}" in template else "") + (f" | time {time}" if "{T}" in template else "")
    return Layout(name, render)


def _case_keep_ordinal(text: str, case: str) -> str:
    """Upper/lower the text but keep an oddly cased ordinal suffix as typed ("11Th")."""
    parts = re.split(r"(\d+(?:St|Nd|Rd|Th))", text)
    return "".join(p if re.fullmatch(r"\d+(?:St|Nd|Rd|Th)", p) else _case(p, case) for p in parts)


def _numeric_layout(pattern: str, time: str) -> Layout:
    template = NUMERIC[pattern]

    def render(d: dt.date, rng: random.Random) -> str:
        t = _time(rng, time) if "{T}" in template else ""
        if "{T}" in template and pattern.endswith("Thh:mm:ss"):
            t = _time(rng, "iso")
        return template.format(dd=f"{d.day:02d}", d=d.day, mm=f"{d.month:02d}", m=d.month, yyyy=d.year,
                               yy=f"{d.year % 100:02d}", T=t)

    return Layout(f"{pattern}" + (f" | time {time}" if "{T}" in template else ""), render)


@cache
def date_layouts() -> tuple[Layout, ...]:
    """80 layouts: a seeded sample of the combinations with month names, and every numeric one."""
    combos = []
    for pattern, month, day, year, case in itertools.product(NAMED, ("full", "abbr", "abbr.", "sept"),
                                                             ("d", "dd", "ord", "ORD"), ("yyyy", "yy", "'yy"),
                                                             ("title", "upper", "lower")):
        if pattern == "D of M Y" and day not in ("ord", "ORD"):
            continue
        if day == "ORD" and case == "title":
            continue
        if year != "yyyy" and pattern in ("Y M D",):
            continue
        combos.append((pattern, month, day, year, case))
    rng = random.Random("dates-layouts")
    chosen = rng.sample(combos, 66)
    layouts = [_named_layout(*c, weekday=rng.choice(("full", "abbr")),
                             time=rng.choice(("24h", "ampm", "ampm-lower", "secs"))) for c in chosen]
    layouts += [_numeric_layout(p, rng.choice(("24h", "secs"))) for p in NUMERIC]
    return tuple(layouts)


def dates() -> Family:
    return Family("dates", "messy dates (80 layouts: month names in 4 spellings and 3 cases, ordinals, "
                  "two-digit years, weekdays, times) -> ISO 8601", _date, lambda d: d.isoformat(),
                  date_layouts(), parts=lambda d, text: tuple(re.findall(r"[A-Za-z]+\.?", text)))


# -- person names -------------------------------------------------------------------------------
TRAIN_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR", "sv_SE")
HELD_OUT_LOCALES = ("cs_CZ", "hu_HU", "fi_FI", "ga_IE")  # test column only
HELD_OUT_LOCALE_SHARE = 0.12
PARTICLES = {"van", "von", "der", "den", "de", "da", "di", "du", "del", "della", "la", "le", "ten", "ter", "'t", "zu"}
HONORIFICS = ("Mr.", "Mrs.", "Ms.", "Miss", "Dr.", "Prof.", "Mr", "Dr", "Rev.", "Sir")
SUFFIXES = ("Jr.", "Sr.", "II", "III", "Jr")


def proper(name: str) -> str:
    """The clean spelling of a name: each word capitalized after a start, apostrophe or hyphen
    (O'Connor, Smith-Jones), Mc + capital (McDonald); particles lower case inside a surname."""
    words = []
    for i, word in enumerate(name.split()):
        if i > 0 or len(name.split()) > 1:
            if word.lower() in PARTICLES and i < len(name.split()) - 1:
                words.append(word.lower())
                continue
        out, start = [], True
        for ch in word.lower():
            out.append(ch.upper() if start else ch)
            start = ch in "'-\u2019"
        text = "".join(out)
        if text.startswith("Mc") and len(text) > 2:
            text = "Mc" + text[2].upper() + text[3:]
        words.append(text)
    return " ".join(words)


@cache
def _fakers() -> dict[str, object]:
    from faker import Faker

    out = {}
    for i, loc in enumerate(TRAIN_LOCALES + HELD_OUT_LOCALES):
        f = Faker(loc)
        f.seed_instance(1000 + i)
        out[loc] = f
    return out


def _person(rng: random.Random, which: str) -> dict:
    fakers = _fakers()
    held = which == "test" and rng.random() < HELD_OUT_LOCALE_SHARE
    loc = rng.choice(HELD_OUT_LOCALES if held else TRAIN_LOCALES)
    f = fakers[loc]
    while True:
        f.seed_instance(rng.randrange(2**32))
        first, last, middle = f.first_name(), f.last_name(), f.first_name()
        if " " in first or side(first) != which or side(last) != which or middle == first:
            continue
        return {"first": proper(first), "last": proper(last), "middle": proper(middle), "initial": middle[0].upper(),
                "hon": rng.choice(HONORIFICS), "suffix": rng.choice(SUFFIXES), "locale": loc, "held": held}


NAME_PATTERNS = {
    "L, F": "{L}, {F}", "L, F I.": "{L}, {F} {I}.", "L,F": "{L},{F}", "F L": "{F} {L}", "F I. L": "{F} {I}. {L}",
    "F I L": "{F} {I} {L}", "F Mid L": "{F} {Mid} {L}", "H F L": "{H} {F} {L}", "H F I. L": "{H} {F} {I}. {L}",
    "L, H F": "{L}, {H} {F}", "L,H F": "{L},{H} {F}", "F L, S": "{F} {L}, {S}", "F L S": "{F} {L} {S}",
    "L; F": "{L}; {F}", "L F (last first, comma-less, upper surname)": "{LU} {F}", "F Mid I. L": "{F} {Mid} {I}. {L}",
}
NAME_CASES = ("as typed", "upper", "lower", "surname upper", "str.title")


def _name_layout(pattern: str, case: str) -> Layout:
    template = NAME_PATTERNS[pattern]

    def render(p: dict, rng: random.Random) -> str:
        last = p["last"].upper() if case == "surname upper" else p["last"]
        text = template.format(L=last, F=p["first"], I=p["initial"], Mid=p["middle"], H=p["hon"], S=p["suffix"],
                               LU=p["last"].upper())
        return {"as typed": text, "upper": text.upper(), "lower": text.lower(), "surname upper": text,
                "str.title": text.title()}[case]

    return Layout(f"{pattern} | {case}", render)


@cache
def name_layouts() -> tuple[Layout, ...]:
    combos = [(p, c) for p, c in itertools.product(NAME_PATTERNS, NAME_CASES)
              if not (c == "surname upper" and p.startswith("F"))
              # "LAST First" without a comma is told from "First Last" only by its case
              and not (p.startswith("L F") and c != "as typed")]
    return tuple(_name_layout(p, c) for p, c in combos)


NAME_WORDS = {w.casefold() for w in (*PARTICLES, *HONORIFICS, *SUFFIXES)}


def _name_parts(p: dict, text: str) -> tuple[str, ...]:
    """The honorifics, suffixes and particles of the row as typed ("Dr.", "VAN", "Jr")."""
    return tuple(w for w in text.replace(",", " ").split() if w.casefold() in NAME_WORDS)


def names() -> Family:
    return Family("names", "person records (16 patterns x 5 cases: honorifics before and after a comma, "
                  "suffixes, middle names, particles; 4 locales only in the test column) -> First Last",
                  _person, lambda p: f"{p['first']} {p['last']}", name_layouts(), parts=_name_parts,
                  kind=lambda p: "unseen locale" if p["held"] else "", clean_share=0.1)


# -- phones -------------------------------------------------------------------------------------
HOME = "US"
OTHER_REGIONS = ("GB", "DE", "FR", "ES", "IT", "NL", "AU")
HELD_OUT_REGIONS = ("JP", "BR", "IN", "MX")  # test column only
HELD_OUT_REGION_SHARE = 0.08


def _phone(rng: random.Random, which: str) -> dict:
    import phonenumbers

    held = which == "test" and rng.random() < HELD_OUT_REGION_SHARE
    region = rng.choice(HELD_OUT_REGIONS) if held else (HOME if rng.random() < 0.6 else rng.choice(OTHER_REGIONS))
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE if rng.random() < 0.5
                                                   else phonenumbers.PhoneNumberType.FIXED_LINE)
    digits = phonenumbers.national_significant_number(example)  # keeps Italy's leading 0
    while True:
        keep = rng.randint(2, 4)
        national = digits[:keep] + "".join(str(rng.randrange(10)) for _ in digits[keep:])
        number = phonenumbers.parse(f"+{example.country_code}{national}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number) and side(e164) == which:
            intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            nat = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            return {"e164": e164, "cc": str(example.country_code), "intl": intl, "national": nat,
                    "region": region, "held": held}


def _groups(p: dict) -> list[str]:
    return p["intl"].split()[1:]  # the international format's digit groups after the country code


PHONE_STYLES = {
    "+CC g g g": lambda p: p["intl"],
    "+CCggg": lambda p: p["e164"],
    "00CC g g g": lambda p: "00" + p["cc"] + " " + " ".join(_groups(p)),
    "+CC-g-g-g": lambda p: "+" + p["cc"] + "-" + "-".join(_groups(p)),
    "+CC.g.g.g": lambda p: "+" + p["cc"] + "." + ".".join(_groups(p)),
    "(+CC) g g g": lambda p: f"(+{p['cc']}) " + " ".join(_groups(p)),
    "+CC (0) g g g": lambda p: f"+{p['cc']} (0) " + " ".join(_groups(p)) if p["cc"] != "1" else p["intl"],
    "national": lambda p: p["national"] if p["region"] == HOME else p["intl"],
    "national dashes": lambda p: (p["national"].replace("(", "").replace(") ", "-") if p["region"] == HOME
                                  else "+" + p["cc"] + " " + "-".join(_groups(p))),
    "national dots": lambda p: (p["national"].replace("(", "").replace(") ", ".").replace("-", ".")
                                if p["region"] == HOME else "+" + p["cc"] + " " + ".".join(_groups(p))),
    "national digits": lambda p: (p["e164"][2:] if p["region"] == HOME else p["e164"]),
    "1-national": lambda p: ("1-" + p["national"].replace("(", "").replace(") ", "-") if p["region"] == HOME
                             else "+" + p["cc"] + "-" + "-".join(_groups(p))),
}
PHONE_PREFIXES = ("", "tel: ", "Tel.: ", "Phone: ", "ph ", "mobile ", "TEL ", "(h) ")


@cache
def phone_layouts() -> tuple[Layout, ...]:
    layouts = []
    for (name, style), prefix in itertools.product(PHONE_STYLES.items(), PHONE_PREFIXES):
        layouts.append(Layout(f"{prefix.strip() or 'no prefix'} | {name}",
                              lambda p, rng, style=style, prefix=prefix: prefix + style(p)))
    return tuple(layouts)


def phones() -> Family:
    return Family("phones", "phone numbers of a US company's contacts (12 styles x 8 prefixes; 4 regions "
                  "only in the test column) -> E.164", _phone, lambda p: p["e164"], phone_layouts(),
                  parts=lambda p, text: ("+" + p["cc"], *text.split()[:1]),
                  kind=lambda p: "unseen region" if p["held"] else "", clean_share=0.1)
