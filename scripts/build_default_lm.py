"""Build the pretrained LM that ships inside strseq (``strseq_tasks/pretrained/lm``).

    .venv/bin/python scripts/build_default_lm.py                 # corpus + pretraining, ~40 min on 2 cores
    .venv/bin/python scripts/build_default_lm.py --corpus-only corpus.txt   # just write the corpus

Everything comes offline from data shipped in PyPI packages (the ``bench`` extra): word lists
of nine languages from wordfreq, and person names, addresses, company names, e-mail addresses,
jobs, licence plates, IBANs, product codes, ISBNs, dates and phone numbers in 24 locales from
Faker, plus phone numbers in several layouts from phonenumbers. No downloads. The corpus is
deterministic under ``--seed`` (its sha256 is printed and recorded in the manifest); training
runs a fixed number of epochs with no time budget, so the same seed, threads and torch build
give the same weights.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strseq_tasks.learn.lm_bundle import default_lm_path, fingerprint_corpus, pretrain_bundle  # noqa: E402
from strseq_tasks.learn.pretraining import PretrainConfig  # noqa: E402

WORD_LANGUAGES = {"en": 30000, "de": 12000, "fr": 12000, "es": 12000, "it": 8000, "nl": 8000, "pt": 8000,
                  "pl": 8000, "sv": 6000}
LOCALES = ("en_US", "en_GB", "en_AU", "en_CA", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA", "es_ES",
           "es_MX", "it_IT", "nl_NL", "pl_PL", "pt_BR", "pt_PT", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "tr_TR",
           "ro_RO", "hu_HU")
PER_LOCALE = 1500  # records per locale; each gives several strings
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "AU", "CA", "CH", "SE", "PL", "BR", "IN", "JP")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%d %b %Y", "%d %B %Y", "%B %d, %Y", "%b %d, %Y",
                "%Y/%m/%d", "%Y%m%d", "%d-%b-%Y", "%A, %B %d, %Y", "%a %d %b %Y", "%d-%m-%Y", "%Y.%m.%d",
                "%m-%d-%Y", "%d %B, %Y", "%Y-%m-%dT%H:%M:%S")
CODE_PATTERNS = ("??-####", "###-???-###", "?##-##-???", "SKU-#####", "??####?", "####-####-####", "#?#?-##",
                 "P/N ###-####", "REF ??-#####", "???/####/??", "##.###.###", "V#.#.##")


def _cased(text: str, rng: random.Random) -> str:
    """Mostly as written, sometimes lower or upper case: dirty columns come in every case."""
    roll = rng.random()
    return text.lower() if roll < 0.15 else text.upper() if roll < 0.25 else text


def word_strings(rng: random.Random) -> list[str]:
    from wordfreq import top_n_list

    out = []
    for lang, n in WORD_LANGUAGES.items():
        for word in top_n_list(lang, n):
            if any(c.isalpha() for c in word) and len(word) > 1:
                roll = rng.random()
                out.append(word.capitalize() if roll < 0.2 else word.upper() if roll < 0.27 else word)
    return out


def faker_strings(rng: random.Random, seed: int) -> dict[str, list[str]]:
    from faker import Faker

    parts: dict[str, list[str]] = {k: [] for k in ("names", "addresses", "companies", "emails", "jobs", "codes",
                                                   "dates", "phones")}
    start = dt.date(1920, 1, 1).toordinal()
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + i)
        for _ in range(PER_LOCALE):
            first, last = fake.first_name(), fake.last_name()
            layout = rng.random()
            name = (f"{last}, {first}" if layout < 0.2 else f"{first} {last}" if layout < 0.7 else fake.name())
            parts["names"].append(_cased(name, rng))
            address = fake.address().replace("\n", ", ")
            parts["addresses"].append(_cased(address if rng.random() < 0.6 else fake.street_address(), rng))
            parts["addresses"].append(fake.city())
            parts["companies"].append(_cased(fake.company(), rng))
            parts["emails"].append(fake.email())
            parts["jobs"].append(fake.job())
            roll = rng.random()
            code = (fake.bothify(rng.choice(CODE_PATTERNS)).upper() if roll < 0.4 else fake.ean13() if roll < 0.55
                    else fake.isbn13() if roll < 0.7 else fake.license_plate() if roll < 0.85 else fake.iban())
            parts["codes"].append(code)
            day = dt.date.fromordinal(start + rng.randrange(45000))
            parts["dates"].append(_cased(day.strftime(rng.choice(DATE_FORMATS)), rng))
            parts["phones"].append(fake.phone_number())
    return parts


def phone_strings(rng: random.Random, n: int) -> list[str]:
    import phonenumbers as pn

    fmt = pn.PhoneNumberFormat
    out = []
    while len(out) < n:
        region = rng.choice(PHONE_REGIONS)
        example = pn.example_number_for_type(region, rng.choice([pn.PhoneNumberType.FIXED_LINE,
                                                                 pn.PhoneNumberType.MOBILE]))
        if example is None:
            continue
        digits = pn.national_significant_number(example)
        candidate = digits[:3] + "".join(rng.choice("0123456789") for _ in digits[3:])
        num = pn.parse("+" + str(example.country_code) + candidate)
        if not pn.is_valid_number(num):
            continue
        out.append(pn.format_number(num, rng.choice([fmt.E164, fmt.INTERNATIONAL, fmt.NATIONAL])))
    return out


def build_corpus(seed: int) -> tuple[list[str], dict[str, int]]:
    rng = random.Random(seed)
    parts = {"words": word_strings(rng)}
    parts.update(faker_strings(rng, seed))
    parts["phones"] += phone_strings(rng, 12000)
    texts = [t for strings in parts.values() for t in strings if 0 < len(t) <= 128]
    rng.shuffle(texts)
    return texts, {k: len(v) for k, v in parts.items()}


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # some Faker address providers pick from sets: fix string hashing so the corpus is reproducible
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8, help="passes over the corpus (no time budget)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=default_lm_path())
    parser.add_argument("--corpus-only", type=Path, help="write the corpus (one string per line) here and stop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    texts, composition = build_corpus(args.seed)
    chars = Counter(c for t in texts for c in t)
    print(f"corpus: {len(texts)} strings, {sum(chars.values())} characters, {len(chars)} distinct; "
          f"sha256 {fingerprint_corpus(texts)}")
    print("composition: " + ", ".join(f"{k} {v}" for k, v in composition.items()))
    if args.corpus_only:
        args.corpus_only.write_text("\n".join(texts) + "\n", encoding="utf-8")
        return
    cfg = PretrainConfig(seed=args.seed, minutes=None, max_epochs=args.epochs, threads=args.threads,
                         eval_every=500)

    def report(r) -> None:
        logging.info("step %d (epoch %.2f): train %.3f bpc, held-out %s", r.step, r.epoch, r.train_bpc, r.heldout_bpc)

    manifest = pretrain_bundle(texts, args.out, cfg, name="strseq-default-lm", overwrite=True, min_count=20,
                               corpus_info={"composition": composition, "seed": args.seed,
                                            "built_by": "scripts/build_default_lm.py",
                                            "packages": {p: version(p) for p in ("wordfreq", "faker", "phonenumbers")},
                                            "word_lists": WORD_LANGUAGES, "locales": list(LOCALES)},
                               on_eval=report)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({size / 1e6:.1f} MB): held-out bits/char {manifest['heldout']['bits_per_char']}")


if __name__ == "__main__":
    main()
