"""Columns of things: street addresses, product codes, quantities with units, company names.

- ``addresses``: US street addresses as typed -> a USPS-style line ("123 N Maple Ave Apt 5B").
  A package could supply the abbreviations, but the benchmark gives none: only the pairs teach them.
- ``product_codes``: a fictitious company's catalogue ("northwind 12 black large") -> its SKU
  ("NWD-00012-BK-L"). The brand codes, colour codes and layout are the company's own: **no
  package or pretraining can know them**, only the pairs. Brands follow a long tail; some never
  occur in the pairs (the model should not be sure of those).
- ``quantities``: amounts with units in many spellings and number formats ("2,5 Kilo",
  "1 1/2 lbs", "250gr") -> "2.5 kg", "1.5 lb", "250 g".
- ``companies``: company names with legal forms in many spellings ("ACME CORPORATION",
  "smith & sons, inc") -> "Acme Corp.", "Smith & Sons Inc.".
"""

from __future__ import annotations

import itertools
import random
from functools import cache

from benchmarks.columns.core import Family, Layout, side

# -- addresses ----------------------------------------------------------------------------------
SUFFIXES = {  # USPS abbreviation: spellings people type (the first is the full word)
    "St": ("Street", "St", "St.", "Str"), "Ave": ("Avenue", "Ave", "Ave.", "Av"), "Rd": ("Road", "Rd", "Rd."),
    "Dr": ("Drive", "Dr", "Dr.", "Drv"), "Ln": ("Lane", "Ln", "Ln."), "Blvd": ("Boulevard", "Blvd", "Blvd.", "Boul"),
    "Ct": ("Court", "Ct", "Ct."), "Pl": ("Place", "Pl", "Pl."), "Ter": ("Terrace", "Ter", "Terr"),
    "Pkwy": ("Parkway", "Pkwy", "Pky"), "Cir": ("Circle", "Cir", "Circ"), "Hwy": ("Highway", "Hwy", "Hwy."),
    "Trl": ("Trail", "Trl", "Tr"), "Sq": ("Square", "Sq", "Sq."), "Xing": ("Crossing", "Xing", "Crssng"),
    "Hts": ("Heights", "Hts", "Hts."), "Way": ("Way",), "Aly": ("Alley", "Aly", "Ally"),
}
SUFFIX_WEIGHTS = [1 / (i + 1) ** 1.2 for i in range(len(SUFFIXES))]  # Street common, Alley rare
DIRECTIONS = {"N": ("North", "N", "N."), "S": ("South", "S", "S."), "E": ("East", "E", "E."),
              "W": ("West", "W", "W."), "NE": ("Northeast", "NE", "N.E."), "SW": ("Southwest", "SW", "S.W.")}
UNITS = {"Apt": ("Apartment", "Apt", "Apt.", "#"), "Ste": ("Suite", "Ste", "Ste.", "Suite #"),
         "Unit": ("Unit", "Unit", "Unit #"), "Fl": ("Floor", "Fl", "Fl.")}
STREET_WORDS = ("Oak", "Maple", "Cedar", "Pine", "Elm", "Lake", "Hill", "Park", "Washington", "Lincoln", "Spring",
                "Mill", "River", "Church", "Sunset", "Highland", "Meadow", "Forest", "Willow", "Ridge")


@cache
def _surnames() -> tuple[str, ...]:
    from faker.providers.person.en_US import Provider

    return tuple(sorted({n for n in Provider.last_names if n.isalpha() and n == n.capitalize()}))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _address(rng: random.Random, which: str) -> dict:
    while True:
        roll = rng.random()
        base = (_ordinal(rng.randint(1, 120)) if roll < 0.15 else rng.choice(STREET_WORDS) if roll < 0.35
                else rng.choice(_surnames()))
        number = str(rng.randint(1, 19999) if rng.random() < 0.9 else rng.randint(1, 99))
        if side(f"{number} {base}") == which:
            break
    return {"number": number, "base": base, "suffix": rng.choices(list(SUFFIXES), SUFFIX_WEIGHTS)[0],
            "dir": rng.choice(list(DIRECTIONS)) if rng.random() < 0.35 else "",
            "unit": rng.choice(list(UNITS)) if rng.random() < 0.4 else "",
            "unit_no": rng.choice([str(rng.randint(1, 40)), f"{rng.randint(1, 20)}{rng.choice('ABCD')}",
                                   str(rng.randint(100, 2400))]),
            "spell": rng.random()}


def _address_target(a: dict) -> str:
    words = [a["number"], a["dir"], a["base"], a["suffix"]]
    if a["unit"]:
        words += [a["unit"], a["unit_no"]]
    return " ".join(w for w in words if w)


def _address_layout(suffix_form: int, dir_form: int, unit_form: int, commas: bool, case: str) -> Layout:
    def render(a: dict, rng: random.Random) -> str:
        forms = SUFFIXES[a["suffix"]]
        suffix = forms[min(suffix_form, len(forms) - 1)]
        direction = DIRECTIONS[a["dir"]][dir_form] if a["dir"] else ""
        street = " ".join(w for w in (a["number"], direction, a["base"], suffix) if w)
        if a["unit"]:
            designator = UNITS[a["unit"]][min(unit_form, len(UNITS[a["unit"]]) - 1)]
            unit = f"{designator}{a['unit_no']}" if designator.endswith("#") else f"{designator} {a['unit_no']}"
            street += (", " if commas else " ") + unit
        return {"as typed": street, "upper": street.upper(), "lower": street.lower()}[case]

    return Layout(f"suffix form {suffix_form} | direction form {dir_form} | unit form {unit_form} | "
                  f"{'commas' if commas else 'no commas'} | {case}", render)


@cache
def address_layouts() -> tuple[Layout, ...]:
    return tuple(_address_layout(*c) for c in itertools.product(range(4), range(3), range(4), (True, False),
                                                                  ("as typed", "upper", "lower")))[::3]


def addresses() -> Family:
    return Family("addresses", "US street addresses (18 street types in up to 4 spellings, directions, unit "
                  "designators, commas, 3 cases) -> USPS-style line", _address, _address_target,
                  address_layouts(), parts=lambda a, text: (a["suffix"], a["unit"] or "no unit"), clean_share=0.1)


# -- product codes ------------------------------------------------------------------------------
BRANDS = {  # a fictitious company's brand codes: some derived from the name, some not
    "Northwind": "NWD", "Contoso": "CTS", "Fabrikam": "FBK", "Tailspin": "TSP", "Woodgrove": "WGV",
    "Adatum": "ADT", "Litware": "LTW", "Proseware": "PRW", "Fourth Coffee": "FCF", "Wingtip": "WTP",
    "Alpine Ski": "ASK", "Blue Yonder": "BYA", "Coho Vineyard": "COH", "Lucerne": "LUC", "Margie": "MGT",
    "Trey Research": "TRR", "Wide World": "WWI", "Humongous": "HMI", "Graphic Design": "GDI", "Southridge": "SRV",
    "Relecloud": "RLC", "Bellows": "BLW", "Kestrel": "KTL", "Ironbark": "IBK", "Quillon": "QLN",
}
BRAND_WEIGHTS = [1 / (i + 1) ** 1.3 for i in range(len(BRANDS))]
COLOURS = {"BK": ("black", "blk", "Black", "BLK", "noir"), "WH": ("white", "wht", "White", "WHT"),
           "RD": ("red", "Red", "RED", "rd"), "BL": ("blue", "blu", "Blue", "BLU"), "GN": ("green", "grn", "Green"),
           "GY": ("grey", "gray", "gry", "Grey"), "NV": ("navy", "Navy", "nvy"), "BG": ("beige", "Beige", "bge"),
           "OL": ("olive", "Olive", "olv"), "PK": ("pink", "Pink", "pnk"), "YL": ("yellow", "ylw", "Yellow"),
           "BR": ("brown", "brn", "Brown")}
SIZES = {"XS": ("xs", "x-small", "XS", "extra small"), "S": ("s", "small", "S", "sm"),
         "M": ("m", "medium", "M", "med"), "L": ("l", "large", "L", "lg"), "XL": ("xl", "x-large", "XL", "extra large"),
         "XXL": ("xxl", "2xl", "XXL", "2x-large")}


def _product(rng: random.Random, which: str) -> dict:
    while True:
        number = rng.randint(1, 99999) if rng.random() < 0.7 else rng.randint(1, 999)
        brand = rng.choices(list(BRANDS), BRAND_WEIGHTS)[0]
        if side(f"{brand} {number}") == which:
            break
    colour = rng.choice(list(COLOURS))
    size = rng.choice(list(SIZES))
    return {"brand": brand, "number": number, "colour": colour, "size": size,
            "colour_word": rng.choice(COLOURS[colour]), "size_word": rng.choice(SIZES[size])}


PRODUCT_PATTERNS = {
    "brand n colour size": "{b} {n} {c} {s}", "BRAND #n COLOUR SIZE": "{B} #{n} {C} {S}",
    "brand-n/colour/size": "{b}-{n}/{c}/{s}", "n brand (colour, size)": "{n} {b} ({c}, {s})",
    "brand n, colour, size": "{b} {n}, {c}, {s}", "brand #n - colour - size": "{b} #{n} - {c} - {s}",
    "brand n size colour": "{b} {n} {s} {c}", "brand-0n-colour-size": "{b}-{n0}-{c}-{s}",
    "item n brand colour size": "item {n} {b} {c} {s}", "brand n colour sz size": "{b} {n} {c} sz {s}",
}


def _product_layout(pattern: str, case: str) -> Layout:
    template = PRODUCT_PATTERNS[pattern]

    def render(p: dict, rng: random.Random) -> str:
        text = template.format(b=p["brand"], B=p["brand"].upper(), n=p["number"], n0=f"{p['number']:05d}",
                               c=p["colour_word"], C=p["colour_word"].upper(), s=p["size_word"],
                               S=p["size_word"].upper())
        return {"as typed": text, "lower": text.lower(), "upper": text.upper()}[case]

    return Layout(f"{pattern} | {case}", render)


def products() -> Family:
    layouts = tuple(_product_layout(p, c)
                    for p, c in itertools.product(PRODUCT_PATTERNS, ("as typed", "lower", "upper")))
    return Family("product_codes", "a fictitious catalogue's items (25 brands on a long tail, 12 colours and 6 "
                  "sizes in several spellings, 10 patterns x 3 cases) -> SKU; the codes are the company's "
                  "own: only the pairs can teach them", _product,
                  lambda p: f"{BRANDS[p['brand']]}-{p['number']:05d}-{p['colour']}-{p['size']}", layouts,
                  parts=lambda p, text: (p["brand"], p["colour_word"].casefold(), p["size_word"].casefold()),
                  clean_share=0.05)


# -- quantities ---------------------------------------------------------------------------------
UNITS_Q = {  # canonical: spellings
    "g": ("g", "gr", "gram", "grams", "gm", "G"), "kg": ("kg", "kgs", "kilo", "kilos", "kilogram", "KG", "Kg"),
    "mg": ("mg", "milligram", "milligrams", "MG"), "lb": ("lb", "lbs", "pound", "pounds", "LB", "Lbs."),
    "oz": ("oz", "oz.", "ounce", "ounces", "OZ"), "l": ("l", "L", "liter", "litre", "liters", "ltr"),
    "ml": ("ml", "mL", "ML", "milliliter", "millilitres"), "fl oz": ("fl oz", "fl. oz.", "fluid ounces", "FL OZ"),
    "cup": ("cup", "cups", "c.", "Cup"), "tbsp": ("tbsp", "Tbsp", "tablespoon", "tablespoons", "tbs"),
    "tsp": ("tsp", "teaspoon", "teaspoons", "tsp."), "pc": ("pc", "pcs", "piece", "pieces", "PCS"),
    "m": ("m", "meter", "metre", "meters", "M"), "cm": ("cm", "centimeter", "cms", "CM"),
}
UNIT_WEIGHTS = [1 / (i + 1) ** 0.9 for i in range(len(UNITS_Q))]
FRACTIONS = {0.5: ("1/2", "\u00bd"), 0.25: ("1/4", "\u00bc"), 0.75: ("3/4", "\u00be")}


def _canonical_number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _quantity(rng: random.Random, which: str) -> dict:
    while True:
        kind = rng.choices(("int", "decimal", "fraction"), (0.5, 0.35, 0.15))[0]
        whole = rng.randint(0 if kind != "int" else 1, 2000 if kind == "int" else 50)
        if kind == "decimal":
            frac = rng.choice((rng.randint(1, 9) / 10, rng.randint(1, 99) / 100))
        elif kind == "fraction":
            frac = rng.choice(list(FRACTIONS))
        else:
            frac = 0.0
        value = whole + frac
        unit = rng.choices(list(UNITS_Q), UNIT_WEIGHTS)[0]
        if value > 0 and side(f"{_canonical_number(value)} {unit}") == which:
            return {"whole": whole, "frac": frac, "kind": kind, "unit": unit, "spelling": rng.choice(UNITS_Q[unit])}


def _number(q: dict, form: str) -> str:
    value = q["whole"] + q["frac"]
    if q["kind"] == "fraction":
        ascii_, glyph = FRACTIONS[q["frac"]]
        if form == "glyph":
            return f"{q['whole']}{glyph}" if q["whole"] else glyph
        return f"{q['whole']} {ascii_}" if q["whole"] else ascii_
    text = _canonical_number(value)
    if form == "comma" and "." in text:
        return text.replace(".", ",")
    if form == "padded" and "." in text:
        return text + "0" if len(text.split(".")[1]) == 1 else text
    return text


QUANTITY_PATTERNS = {"n unit": "{n} {u}", "nunit": "{n}{u}", "n-unit": "{n}-{u}", "approx. n unit": "approx. {n} {u}",
                     "ca. n unit": "ca. {n} {u}", "n unit (net)": "{n} {u} (net)", "qty: n unit": "qty: {n} {u}",
                     "~n unit": "~{n} {u}", "net wt. n unit": "net wt. {n} {u}"}


def _quantity_layout(pattern: str, number_form: str, case: str) -> Layout:
    template = QUANTITY_PATTERNS[pattern]

    def render(q: dict, rng: random.Random) -> str:
        text = template.format(n=_number(q, number_form), u=q["spelling"])
        return {"as typed": text, "upper": text.upper(), "lower": text.lower()}[case]

    return Layout(f"{pattern} | number {number_form} | {case}", render)


def quantities() -> Family:
    layouts = tuple(_quantity_layout(p, n, c) for p, n, c in itertools.product(
        QUANTITY_PATTERNS, ("point", "comma", "glyph", "padded"), ("as typed", "upper", "lower")))[::2]
    return Family("quantities", "amounts with units (14 units in up to 6 spellings, decimal points and commas, "
                  "fractions, approximations) -> 'number unit'", _quantity,
                  lambda q: f"{_canonical_number(q['whole'] + q['frac'])} {q['unit']}", layouts,
                  parts=lambda q, text: (q["spelling"].casefold(),), clean_share=0.1)


# -- companies ----------------------------------------------------------------------------------
LEGAL = {"Inc.": ("Incorporated", "Inc", "Inc.", "inc", "INC."), "Corp.": ("Corporation", "Corp", "Corp.", "corp."),
         "Ltd": ("Limited", "Ltd", "Ltd.", "ltd"), "LLC": ("LLC", "L.L.C.", "llc", "Llc"),
         "Co.": ("Company", "Co", "Co."), "GmbH": ("GmbH", "gmbh", "GMBH"), "S.A.": ("S.A.", "SA", "s.a."),
         "plc": ("plc", "PLC", "Plc"), "LLP": ("LLP", "L.L.P.", "llp"), "AG": ("AG", "ag", "A.G.")}
LEGAL_WEIGHTS = [1 / (i + 1) ** 0.8 for i in range(len(LEGAL))]
WORDS = ("Group", "Holdings", "Partners", "Systems", "Logistics", "Foods", "Consulting", "Labs", "Industries",
         "Solutions", "Brothers", "Trading", "Analytics", "Capital", "Works")


def _company(rng: random.Random, which: str) -> dict:
    while True:
        a, b = rng.choice(_surnames()), rng.choice(_surnames())
        shape = rng.choices(("A", "A & B", "A-B", "A W", "The A W", "A & Sons"), (3, 2, 1, 3, 1, 1))[0]
        if side(a) == which and side(b) == which and a != b:
            break
    name = {"A": a, "A & B": f"{a} & {b}", "A-B": f"{a}-{b}", "A W": f"{a} {rng.choice(WORDS)}",
            "The A W": f"The {a} {rng.choice(WORDS)}", "A & Sons": f"{a} & Sons"}[shape]
    legal = rng.choices(list(LEGAL), LEGAL_WEIGHTS)[0]
    return {"name": name, "legal": legal, "spelling": rng.choice(LEGAL[legal])}


def _company_layout(comma: bool, and_word: bool, case: str) -> Layout:
    def render(c: dict, rng: random.Random) -> str:
        name = c["name"].replace(" & ", " and ") if and_word else c["name"]
        text = f"{name}{',' if comma else ''} {c['spelling']}"
        return {"as typed": text, "upper": text.upper(), "lower": text.lower(), "title": text.title()}[case]

    return Layout(f"{'comma' if comma else 'no comma'} | {'and' if and_word else '&'} | {case}", render)


def companies() -> Family:
    layouts = tuple(_company_layout(*c) for c in itertools.product((True, False), (True, False),
                                                                  ("as typed", "upper", "lower", "title")))
    return Family("companies", "company names (10 legal forms in 3-5 spellings, '&' or 'and', commas, 4 cases) "
                  "-> 'Name Legal'", _company, lambda c: f"{c['name']} {c['legal']}", layouts,
                  parts=lambda c, text: (c["spelling"],), clean_share=0.1)
