"""Known values: nearest search (edit distance, ties in list order), normalization, storage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from strseq_tasks.core.known import KnownValues, Near, recase

WORDS = ["house", "horse", "mouse", "hose", "receive", "believe", "Zürich"]


def test_a_known_value_is_its_own_nearest():
    assert KnownValues(WORDS).near("horse") == Near(("horse",), 0)


@pytest.mark.parametrize("text, expected", [
    ("hoose", Near(("house", "horse", "hose"), 1)),   # three at one edit, in list order
    ("recieve", Near(("receive",), 1)),                # an adjacent swap is one edit
    ("beleive", Near(("believe",), 1)),
    ("recievd", Near(("receive",), 2)),
    ("xyz", None),                                     # nothing within 2 edits
    ("Zurich", Near(("Zürich",), 1)),
])
def test_nearest_values(text, expected):
    assert KnownValues(WORDS).near(text) == expected


def test_decomposed_input_matches_a_precomposed_value():
    assert KnownValues(["Zürich"]).near("Zu\u0308rich") == Near(("Zürich",), 0)
    assert "Zu\u0308rich" in KnownValues(["Zürich"])


def test_max_distance_and_max_candidates():
    assert KnownValues(WORDS, max_distance=1).near("recievd") is None
    assert KnownValues(WORDS, max_distance=0).near("hoose") is None
    assert KnownValues(WORDS, max_candidates=2).near("hoose") == Near(("house", "horse"), 1)
    with pytest.raises(ValueError):
        KnownValues(WORDS, max_distance=-1)


def test_blanks_and_duplicates_are_dropped_and_non_strings_refused():
    known = KnownValues(["a", "", "  ", "a", "b"])
    assert known.values == ("a", "b")
    with pytest.raises(TypeError, match="strings"):
        KnownValues(["a", 3])


@pytest.mark.parametrize("text", ['["a", "b"]', '{"values": "a b", "max_distance": 2}', '{"values": ["a", 3], '
                                  '"max_distance": 2}', '{"values": ["a"], "max_distance": "2"}', '{"values": ["a"]}',
                                  '{"values": ["a"], "max_distance": true}', '{"values": ["a"'])
def test_from_json_rejects_other_shapes_with_a_value_error(text):
    with pytest.raises(ValueError):
        KnownValues.from_json(text)


def test_json_round_trip_keeps_odd_values():
    known = KnownValues(["line\nbreak", "tab\there", "emoji 🙂", "ﬁ ligature"], max_distance=1)
    again = KnownValues.from_json(known.to_json())
    assert again == known and again.fingerprint() == known.fingerprint()
    assert KnownValues(["b", "a"]).fingerprint() != KnownValues(["a", "b"]).fingerprint()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcé ", min_size=1, max_size=6), min_size=1, max_size=30),
       st.text(alphabet="abcé ", min_size=1, max_size=7))
def test_near_agrees_with_a_brute_force_search(values, text):
    known = KnownValues(values, max_distance=2, max_candidates=100)
    distances = {v: OSA.distance(text, v) for v in known.values}
    within = {v: d for v, d in distances.items() if d <= 2}
    result = known.near(text)
    if not within:
        assert result is None
    else:
        best = min(within.values())
        assert result.distance == best
        assert result.values == tuple(v for v in known.values if within.get(v) == best)


def test_log_prior_follows_list_order():
    import numpy as np

    known = KnownValues(["the", "of", "and"])
    assert known.log_prior(["the", "and", "of"]) == pytest.approx(-np.log([1.0, 3.0, 2.0]))


def test_a_lower_case_value_stands_for_its_capitalized_and_upper_case_forms():
    known = KnownValues(["mississippi", "january", "McDonald"], max_distance=2)
    assert known.near("Mississippi") == Near(("Mississippi",), 0)  # kept as typed, not lower-cased
    assert known.near("JANUARY") == Near(("JANUARY",), 0)
    assert known.near("Missisipi") == Near(("Mississippi",), 2)
    assert known.near("MISISSIPPI") == Near(("MISSISSIPPI",), 1)
    assert known.near("missisippi") == Near(("mississippi",), 1)
    # a value with capitals of its own is matched as written
    assert known.near("MCDONALD") is None
    assert known.near("McDonnald") == Near(("McDonald",), 1)


def test_a_recased_value_keeps_its_place_in_the_list_for_the_prior():
    known = KnownValues(["their", "there"], max_distance=1)
    assert known.near("Thier") == Near(("Their",), 1)
    assert list(known.log_prior(["Their", "There", "there"])) == pytest.approx([0.0, -np.log(2), -np.log(2)])


def test_recase_follows_the_input():
    assert recase("mississippi", "Missisipi") == "Mississippi"
    assert recase("mississippi", "MISSISIPPI") == "MISSISSIPPI"
    assert recase("mississippi", "missisippi") == "mississippi"
    assert recase("o'hara", "O'hara") == "O'hara"
    assert recase("x", "X") == "X"
