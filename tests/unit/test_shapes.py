"""Input shapes (core/shapes.py): the layout of a text without its values."""

from __future__ import annotations

import pytest

from strseq_tasks.core.shapes import MAX_DIGITS, Familiar, novel, shapes_of, text_shape, unseen_chars


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
    assert familiar.flags(["Seán Smith", "SMITH John"]) == {"novel": [False, True], "unseen": [False, True]}
    assert Familiar().flags(["a"]) == {"novel": None, "unseen": None}
