"""Input shapes (core/shapes.py): the layout of a text without its values."""

from __future__ import annotations

import pytest

import strseq_tasks.core.words as words_module
from strseq_tasks.core.shapes import (
    MAX_DIGITS,
    Familiar,
    lost_chars,
    novel,
    shapes_of,
    text_shape,
    unseen_chars,
)
from strseq_tasks.core.words import WordTreatment


@pytest.mark.parametrize("text, shape", [
    ("GOTTHARD Giovanni", "AA Aa"),
    ("Giovanni Gotthard", "Aa Aa"),
    ("gotthard, giovanni", "aa, aa"),
    ("Smith, John A.", "Aa, Aa A."),
    ("McDonald", "Ax"),
    ("May 16th, 1969", "Aa 99aa, 9999"),
    ("16/05/69", "99/99/99"),
    ("+1 (555) 010-2030", "+9 (999) 999-9999"),
    ("1234567890", "9" * MAX_DIGITS),
    ("½ cup", "½ aa"),  # a vulgar fraction is a symbol, not a letter or a digit
    ("Ó Súilleabháin", "A Aa"),  # letters of any script
    ("  a\t\u00a0 b  ", "a a"),  # whitespace runs are one space, ends dropped
    ("", ""),
])
def test_a_shape_keeps_the_layout_and_drops_the_values(text, shape):
    assert text_shape(text) == shape


def test_novel_compares_against_the_shapes_learned_from():
    learned = shapes_of(["John Smith", "SMITH, John", "12/05/1969"])
    assert novel(["Mary Jones", "JONES, Mary", "JONES Mary", "1/5/1969"], learned) == [False, False, True, True]
    assert novel(["anything"], None) is None  # no shapes stored: no answer


def test_unseen_characters_are_those_no_training_input_held():
    chars = "".join(sorted(set("John Smith" + "Seán Murphy")))
    assert unseen_chars(["Seán Smith", "Loretto Ó Scanaill", "Sean"], chars) == [False, True, True]  # "a" too
    assert unseen_chars(["x"], None) is None
    familiar = Familiar(shapes_of(["John Smith"]), chars)
    assert familiar.flags(["Seán Smith", "SMITH John"]) == {"novel": [False, True], "unseen": [False, True],
                                                             "disagree": None, "lost": None}
    assert Familiar().flags(["a"], ["a"]) == {"novel": None, "unseen": None, "disagree": None, "lost": None}


def test_lost_characters_are_unseen_letters_or_digits_the_output_lacks_in_any_case():
    chars = "".join(sorted(set("John Smith, Seán Murphy 12")))
    texts = ["Loretto Ó Scanaill", "loretto ó scanaill", "LORETTO Ó SCANAILL", "Seán Smith", "Zoë Smith",
             "Zoë Smith", "Sean\tSmith", "John Smith ~", "John Smith 7", "wednesday 4 nov", "14¼ ltr"]
    outputs = ["Loretto Scanaill", "Loretto Ó Scanaill", "Loretto ó Scanaill", "Sean Smith", "Zoe Smith",
               "Zoë Smith", "Sean Smith", "John Smith", "John Smith", "11-04", "14.25 l"]
    # "Ó" dropped; kept, in any case; "á" was seen (its loss is the word flag's business); "ë" lost to "e";
    # kept; an unseen tab, an unseen "~": whitespace and punctuation are not content; ASCII letters and digits
    # are every model's, seen or not; "¼" (a digit to str.isalnum) dropped
    assert lost_chars(texts, outputs, chars) == [True, False, False, False, True, False, False, False, False, False,
                                                 True]
    assert lost_chars(["x"], ["y"], None) is None
    assert Familiar(None, chars).flags(texts[:2], outputs[:2])["lost"] == [True, False]


ADDRESSES = [("12 Mill Street", "12 Mill St"), ("5 Oak Street", "5 Oak St"), ("7 Elm Pky", "7 Elm Pkwy"),
             ("9 Ash St", "9 Ash St"), ("3 Fir Str", "3 Fir St"), ("4 Mill Str.", "4 Mill St")]


def test_word_treatment_is_what_the_pairs_did_with_each_input_word():
    key = WordTreatment.key
    words = WordTreatment.of(ADDRESSES)
    assert words.always_rewritten == {key("street"), key("pky"), key("str")}  # "st" kept, and values kept
    assert words.ever_rewritten == {key("street"), key("pky"), key("str")}
    mixed = WordTreatment.of([*ADDRESSES, ("8 Birch Pky", "8 Birch Pky")])  # "pky" now kept once
    assert key("pky") not in mixed.always_rewritten and key("pky") in mixed.ever_rewritten
    # stored as hashes, not as the pairs' words
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in words.ever_rewritten) and key("pky") != key("Pky")


def test_the_new_words_of_a_value_are_those_no_input_of_the_pairs_showed():
    words = WordTreatment.of(ADDRESSES)
    assert words.new_words("12 MILL Sq, Apt 3") == ["apt", "sq"]  # "mill" shown, in any case; sorted
    assert words.new_words("9 Ash St") == [] and words.new_words("12 34") == []
    assert words.shown == {WordTreatment.key(w) for w in ("mill", "street", "oak", "elm", "pky", "ash", "st",
                                                         "fir", "str")}
    # a bundle from before the inputs' words were stored: not known, not "nothing new"
    assert WordTreatment(words.always_rewritten, words.ever_rewritten).new_words("12 Mill Sq") is None


@pytest.mark.parametrize("text, output, disagrees", [
    ("21 Lynn Street", "21 Lynn St", False),  # as the pairs do: "street" rewritten, a new word kept
    ("21 LYNN STREET", "21 Lynn St", False),  # in any case
    ("21 Lynn Street", "21 Linn St", True),  # a word no pair showed, rewritten
    ("21 Lynn Pky", "21 Lynn Pky", True),  # a word every pair rewrote, kept
    ("21 Lynn Sq", "21 Lynn St", True),  # a new word ("sq") rewritten
    ("9 Ash St", "9 Ash", True),  # a word the pairs always kept, dropped
])
def test_an_output_disagrees_where_it_treats_a_word_unlike_every_pair(text, output, disagrees):
    assert WordTreatment.of(ADDRESSES).disagrees(text, output) is disagrees
    familiar = Familiar.of(None, ADDRESSES)
    assert familiar.flags([text], [output])["disagree"] == [disagrees]
    assert familiar.chars == "".join(sorted(set("".join(a for a, _ in ADDRESSES))))


QUANTITIES = [("8¼ pound", "8.25 lb"), ("44¾ pound (net)", "44.75 lb"), ("3 kg", "3 kg"),
              ("~12 POUNDS", "12 lb"), ("5 ounce", "5 oz"), ("27 3/4 mg", "27.75 mg"), ("5 3/4 KG", "5.75 kg")]


@pytest.mark.parametrize("text, output, disagrees", [
    ("1433pound", "1433 lb", False),
    ("1433pound", "1433 pb", True),  # "pound" rewritten, but not into the "lb" both its pairs wrote
    ("2 ounce", "2 oz", False),
    ("2 ounce", "2 oc", False),  # one pair ("5 ounce") cannot say what a word becomes
    ("17 3/4 mg", "17.25 mg", True),  # a fraction is a word here: both its pairs wrote "75"
    ("17 3/4 mg", "17.75 mg", False),
])
def test_an_output_disagrees_where_it_lacks_what_the_pairs_always_rewrote_a_word_into(text, output, disagrees):
    assert WordTreatment.of(QUANTITIES).disagrees(text, output) is disagrees


def test_what_a_word_becomes_may_be_a_number_but_not_the_inputs_own_nor_another_words_change():
    key = WordTreatment.key
    dates = [("Apr 26, 1983", "1983-04-26"), ("02-APR-1978", "1978-04-02"), ("apr 9 90", "1990-04-09"),
             ("monday, jun. 15, 26", "2026-06-15"), ("monday 30 jun. '97", "1997-06-30"), ("jun 1 2001", "2001-06-01"),
             ("may 2nd, 08", "2008-05-02"), ("August-2nd-90", "1990-08-02"), ("MAY 21 2001", "2001-05-21")]
    words = WordTreatment.of(dates)
    assert words.rewrites[key("apr")] == {key("04")} and words.rewrites[key("jun")] == {key("06")}
    assert key("monday") not in words.rewrites  # always beside "jun", which three pairs hold: its "06" is jun's
    assert key("nd") not in words.rewrites  # "2nd" -> "02" is the input's number
    assert words.disagrees("Apr 03, 1963", "1963-03-03") and not words.disagrees("Apr 03, 1963", "1963-04-03")
    assert not words.disagrees("22nd jun 1990", "1990-06-22")
    assert words.disagrees("May 16th, 1969", "1969-03-16")  # the confident error: "may" became "05" twice
    # stored as keys, in a manifest's own entry, and read back
    stored = WordTreatment.from_dict(words.to_dict(), words.cases_dict(), words.rewrites_dict())
    assert stored == words and all(len(k) == 16 for k in words.rewrites_dict())
    # a bundle from before them: no rewrites, the other checks as before
    assert WordTreatment.from_dict(words.to_dict()).rewrites is None
    assert not WordTreatment.from_dict(words.to_dict()).disagrees("Apr 03, 1963", "1963-03-03")


def test_an_output_treating_trailing_zeros_unlike_every_pair_disagrees():
    dropped = WordTreatment.of([("~37.40 oz", "37.4 oz"), ("1.90 oz", "1.9 oz"), ("3 oz", "3 oz")])
    assert dropped.zeros == "dropped"
    assert dropped.disagrees("5.50 oz", "5.50 oz") and not dropped.disagrees("5.50 oz", "5.5 oz")
    assert not dropped.disagrees("12.10.1985 oz", "12.10.1985 oz")  # a date's "12.10." is no decimal
    kept = WordTreatment.of([("~37.40 oz", "37.40 oz"), ("1.90 oz", "1.90 oz")])
    assert kept.zeros == "kept" and kept.disagrees("5.50 oz", "5.5 oz") and not kept.disagrees("5.50 oz", "5.50 oz")
    # one such pair, or pairs that differ: no rule
    assert WordTreatment.of([("~37.40 oz", "37.4 oz")]).zeros is None
    assert WordTreatment.of([("~37.40 oz", "37.4 oz"), ("1.90 oz", "1.90 oz")]).zeros is None
    stored = WordTreatment.from_dict(dropped.to_dict(), dropped.cases_dict(), dropped.rewrites_dict(), dropped.zeros,
                                     dropped.manifest()["word_last"])
    assert stored == dropped
    # as a manifest's decoding holds it, and a manifest without words
    assert dropped.manifest()["trailing_zeros"] == "dropped"
    assert WordTreatment.from_manifest(dropped.manifest()) == dropped
    assert WordTreatment.from_manifest({}) is None


def test_more_words_than_a_bundle_keeps_turn_the_word_term_off(monkeypatch):
    monkeypatch.setattr(words_module, "MAX_WORDS", 3)
    assert WordTreatment.of(ADDRESSES) is None
    assert Familiar.of(None, ADDRESSES).flags(["x"], ["y"])["disagree"] is None


STREETS = [(f"{n} {name} {raw}", f"{n} {name} {clean}") for n, name in ((12, "Oak"), (7, "Mill"), (301, "Rocha"))
           for raw, clean in (("Street", "St"), ("Av", "Ave"), ("Pkwy", "Pkwy"), ("Trail", "Trl"))]


def test_an_output_ending_outside_a_closed_class_of_last_words_disagrees():
    """The targets end in a street type, four of them, each often: a closed class. An output ending
    in another word ("Pky", copied from an input no pair held) treats the word unlike the pairs."""
    treatment = WordTreatment.of(STREETS)
    assert treatment.last == {WordTreatment.key(w) for w in ("st", "ave", "pkwy", "trl")}
    assert treatment.disagrees("18067 Oak Pky", "18067 Oak Pky")
    assert not treatment.disagrees("18067 Oak Pkwy", "18067 Oak Pkwy")
    assert not treatment.disagrees("18067 Elm St", "18067 ELM ST")  # any case
    assert not treatment.disagrees("18067", "18067")  # no last word: nothing to say
    # a surname is an open class: most targets' last word is theirs alone
    names = [(f"{a} {b}".lower(), f"{a} {b}") for a, b in zip(["Ann", "Bo", "Cy", "Dee", "Eve"] * 4,
                                                              [f"Surname{chr(97 + i)}" for i in range(20)])]
    assert WordTreatment.of(names).last is None
    assert not WordTreatment.of(names).disagrees("zoe quux", "Zoe Quux")


def test_the_closed_class_is_read_with_good_turing_and_kept_in_the_manifest():
    one_off = STREETS + [("5 Elm Way", "5 Elm Way")]  # 1 of 13 targets ends in a word of its own: 0.077
    assert words_module.closed_last(b for _, b in one_off) is not None
    assert words_module.closed_last((b for _, b in one_off), max_unseen=0.05) is None
    treatment = WordTreatment.of(STREETS)
    assert treatment.manifest()["word_last"] == sorted(treatment.last)
    assert WordTreatment.from_manifest(treatment.manifest()) == treatment
    before = {k: v for k, v in treatment.manifest().items() if k != "word_last"}  # a bundle from before it
    assert WordTreatment.from_manifest(before).last is None
    assert not WordTreatment.from_manifest(before).disagrees("18067 Oak Pky", "18067 Oak Pky")
