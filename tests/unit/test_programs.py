"""Layout programs (core/programs.py): read off outputs, verified, applied only where they hold."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from strseq_tasks.core.program_book import INDUCE_ROWS, VERIFY_ROWS, ProgramBook, ShapeBook, pick_rows
from strseq_tasks.core.programs import Program, induce, shape_of, tokens
from strseq_tasks.core.words import WordTreatment

SURNAMES = ["SMITH", "JONES", "BROWN", "TAYLOR", "WILSON", "DAVIES", "EVANS", "THOMAS", "JOHNSON", "ROBERTS",
            "WALKER", "WRIGHT", "ROBINSON", "THOMPSON", "WHITE", "HUGHES", "EDWARDS", "GREEN", "HALL", "WOOD",
            "HARRIS", "LEWIS", "MARTIN", "JACKSON", "CLARKE", "CLARK", "TURNER", "HILL", "SCOTT", "COOPER",
            "MORRIS", "WARD", "MOORE", "KING", "WATSON", "BAKER", "HARRISON", "MORGAN", "PATEL", "YOUNG"]
FIRST = ["JOHN", "MARY", "ALICE", "PETER", "OLGA", "LIAM", "EMMA", "NOAH", "ZOE", "IVAN", "RUTH", "OMAR"]
MONTHS = {"Jan": "01", "Feb": "02", "Mar": "03", "Apr": "04", "May": "05", "Jun": "06"}


def last_first(text: str) -> str:
    last, first = text.split(", ")
    return f"{first.title()} {last.title()}"


def month_date(text: str) -> str:
    month, day, year = text.replace(",", "").split()
    return f"{year}-{MONTHS[month]}-{day}"


def test_tokens_and_shapes():
    assert tokens("O'CONNOR,  Mary-Ann 007") == ("O", "'", "CONNOR", ",", "  ", "Mary", "-", "Ann", " ", "007")
    assert shape_of("May 16th, 1969") == "Aa 99aa, 9999"
    assert shape_of("SMITH, John A.") == "AA, Aa A."
    assert shape_of("12/3/1998") != shape_of("12/03/1998")  # digit runs keep their exact length
    assert shape_of("a\tb") != shape_of("a b")  # whitespace as it is


def test_induce_reads_functions_constants_and_maps():
    program = induce("AA, AA", [(a, last_first(a)) for a in ["SMITH, JOHN", "DOE, JANE", "BROWN, ALICE"]])
    assert program.describe() == "title($4) copy($3) title($1)"
    assert program.run(tokens("WHITE, BOB")) == "Bob White"
    dates = ["Mar 15, 1998", "Jan 12, 2001", "Mar 17, 1999", "Feb 01, 1999"]
    program = induce("Aa 99, 9999", [(a, month_date(a)) for a in dates])
    assert program.describe() == "copy($6) '-' map($1) '-' copy($3)"
    assert program.run(tokens("Mar 22, 1977")) == "1977-03-22"
    assert program.run(tokens("Feb 22, 1977")) is None  # a key is used once two outputs showed it
    assert program.run(tokens("Apr 22, 1977")) is None  # a month no example showed: the model's row
    assert program.teach(tokens("Feb 23, 1980"), "1980-02-23")
    assert program.run(tokens("Feb 22, 1977")) == "1977-02-22"
    assert not program.teach(tokens("Feb 23, 1981"), "1981-07-23")  # a key's second answer differs: no program
    assert induce("99", [("7", "07"), ("3", "03")]).describe() == "pad2($1)"


def test_runs_of_digits_join_into_one_number():
    program = induce("(999) 999-9999", [("(555) 010-2030", "+15550102030"), ("(212) 555-0000", "+12125550000")])
    assert program.describe() == "'+' join('1', $2, $5, $7)"
    assert program.run(tokens("(617) 253-1000")) == "+16172531000"


TIES = """
from strseq_tasks.core.programs import induce, shape_of
for examples in ([("+1 (555) 010-2030", "15550102030"), ("+1 (415) 555-0199", "14155550199")],
                 [("5555 x", "55"), ("7777 y", "77")]):
    print(induce(shape_of(examples[0][0]), examples).describe())
"""


def test_induce_reads_the_same_program_in_every_process():
    """Several parts may explain every example (the leading 1 a constant or the input's own; any
    of three equal slices); the one taken must not depend on a process's string hashing."""
    read = set()
    for seed in range(8):
        done = subprocess.run([sys.executable, "-c", TIES], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)})
        read.add(done.stdout)
    assert read == {"join($2, $5, $8, $10)\nslice0:2($1)\n"}


def test_induce_refuses_what_no_program_explains():
    assert induce("AA AA", [("AB CD", "Ab Cd"), ("EF GH", "Ef")]) is None  # outputs of different layouts
    # the same key to two outputs: no function of any one token
    assert induce("AA 9", [("AB 1", "x"), ("AB 2", "y"), ("AB 1", "y")]) is None


def feed(book: ProgramBook, values: list[str], model) -> None:
    for value in values:
        book.observe(value, model(value), -0.01)


def names(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return list(dict.fromkeys(f"{rng.choice(SURNAMES)}, {rng.choice(FIRST)}" for _ in range(n * 4)))[:n]


def test_a_program_is_used_only_after_it_reproduced_every_held_out_row():
    book = ProgramBook(guard=None)
    values = names(INDUCE_ROWS + VERIFY_ROWS + 20)
    shape = shape_of(values[0])
    feed(book, values[:INDUCE_ROWS], last_first)
    assert book.needed(shape) == VERIFY_ROWS and book.apply(values[-1]) is None  # read, not yet verified
    feed(book, values[INDUCE_ROWS : INDUCE_ROWS + VERIFY_ROWS - 1], last_first)
    assert book.apply(values[-1]) is None
    feed(book, [values[INDUCE_ROWS + VERIFY_ROWS - 1]], last_first)
    assert book.needed(shape) == 0 and book.accepted(shape)
    assert all(book.apply(v) == last_first(v) for v in values[INDUCE_ROWS + VERIFY_ROWS :])
    assert book.summary()["programs"] == 1 and book.summary()["covered"] == 20


def test_rows_no_program_can_answer_go_to_the_model_at_once():
    book = ProgramBook(guard=None)
    many = names(INDUCE_ROWS + VERIFY_ROWS + book.min_saved)  # one layout with enough rows to read a program
    few = [f"{first.title()} {last.title()}" for last, first in (v.split(", ") for v in many[:10])]  # too few
    values = many + few
    keys = {v: book.keys(v) for v in values}
    assert sorted(book.left_to_model(values, keys)) == sorted(few)
    feed(book, many[: INDUCE_ROWS + VERIFY_ROWS], last_first)  # "AA, AA" gets its program
    assert sorted(book.left_to_model(values[-12:], keys)) == sorted(few)  # few of them left, but a program
    book.observe(many[-1], "Somebody Else", -0.01)  # withdrawn: the model's, however many
    assert sorted(book.left_to_model(values, keys)) == sorted(values)


def test_one_disagreement_in_verification_rejects_the_program():
    book = ProgramBook(guard=None)
    values = names(INDUCE_ROWS + VERIFY_ROWS)
    feed(book, values[:INDUCE_ROWS], last_first)
    feed(book, values[INDUCE_ROWS:-1], last_first)
    book.observe(values[-1], "Somebody Else", -0.01)
    assert not book.accepted(shape_of(values[0])) and book.apply("SMITH, JOHN") is None
    assert book.summary()["rejected"] == {"disagrees with the model": 1}


def test_a_later_disagreement_withdraws_an_accepted_program():
    book = ProgramBook(guard=None)
    values = names(INDUCE_ROWS + VERIFY_ROWS + 2)
    feed(book, values[: INDUCE_ROWS + VERIFY_ROWS], last_first)
    assert book.apply(values[-1]) == last_first(values[-1])
    book.observe(values[-2], "Not The Program", -0.01)  # a row the model decoded itself, read otherwise
    assert book.apply(values[-1]) is None


def test_maps_learn_new_keys_from_the_model_without_counting_them():
    book = ProgramBook(guard=None)
    rng = random.Random(1)
    dates = list(dict.fromkeys(f"{rng.choice(list(MONTHS))} {rng.randint(10, 28)}, {rng.randint(1950, 2020)}"
                               for _ in range(400)))
    jan_feb = [d for d in dates if d[:3] in ("Jan", "Feb")]
    feed(book, jan_feb[: INDUCE_ROWS + VERIFY_ROWS], month_date)
    assert book.accepted("Aa N, N")
    june = next(d for d in dates if d.startswith("Jun"))
    assert book.apply(june) is None
    book.observe(june, month_date(june), -0.01)  # the model's answer teaches the map its key ...
    other_june, third_june = [d for d in dates if d.startswith("Jun") and d != june][:2]
    assert book.apply(other_june) is None
    book.observe(other_june, month_date(other_june), -0.01)  # ... once two answers agree
    assert book.apply(third_june) == month_date(third_june)


def month_dates(seed: int, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    return list(dict.fromkeys(f"{rng.choice(list(MONTHS))} {rng.randint(10, 28)}, {rng.randint(1950, 2020)}"
                              for _ in range(n)))


def day_first(text: str) -> str:  # "Jun 12, 1999" -> "12 Jun 1999", another layout of the same dates
    month, day, year = text.replace(",", "").split()
    return f"{day} {month} {year}"


def test_a_map_borrows_the_keys_another_layout_confirmed():
    book = ProgramBook(guard=None)
    us = month_dates(1)
    feed(book, us[: INDUCE_ROWS + VERIFY_ROWS + 20], month_date)  # "Mon DD, YYYY": every month confirmed
    assert book.accepted("Aa N, N")
    european = [day_first(d) for d in month_dates(2)]
    early = [d for d in european if d.split()[1] in ("Jan", "Feb")]
    feed(book, early[: INDUCE_ROWS + VERIFY_ROWS], lambda t: month_date("{1} {0}, {2}".format(*t.split())))
    assert book.accepted("N Aa N")
    june = [d for d in european if d.split()[1] == "Jun"]
    # no "DD Mon YYYY" row showed June; the other layout's month map, of the same kind, lends it
    assert book.apply(june[0]) == f"{june[0].split()[2]}-06-{june[0].split()[0]}"
    # a row of this layout that the model reads otherwise: June is lent no more, the program stands
    book.observe(june[1], f"{june[1].split()[2]}-07-{june[1].split()[0]}", -0.01)
    assert book.accepted("N Aa N") and book.apply(june[2]) is None


def test_digit_runs_of_any_length_share_a_program_for_the_lengths_the_model_showed():
    book = ProgramBook(guard=None)
    rng = random.Random(3)
    dates = list(dict.fromkeys(f"{rng.choice(['Jan', 'Feb'])} {rng.randint(1, 28)}, {rng.randint(1950, 2020)}"
                               for _ in range(300)))
    assert {shape_of(d) for d in dates} == {"Aa 9, 9999", "Aa 99, 9999"}  # two exact shapes, one layout
    iso = {"Jan": "01", "Feb": "02"}

    def model(text: str) -> str:
        month, day, year = text.replace(",", "").split()
        year = year if len(year) == 4 else ("19" if int(year) > 30 else "20") + year
        return f"{year}-{iso[month]}-{int(day):02d}"

    feed(book, dates[: INDUCE_ROWS + VERIFY_ROWS], model)
    assert book.shape(dates[0]) == "Aa N, N" and book.accepted("Aa N, N")
    assert book.summary()["shown"][0]["program"] == "copy($6) '-' map($1) '-' pad2($3)"
    assert all(book.apply(d) == model(d) for d in dates)  # one-digit days and two-digit ones
    program = book.shapes["Aa N, N"].program
    assert Program.from_dict("Aa N, N", json.loads(json.dumps(program.to_dict()))) == program  # as a store keeps it
    # a year of two digits: a length no row showed is the model's, and what it does there ends the program
    assert book.apply("Jan 5, 85") is None and book.missing("Jan 5, 85") == ("#5:2",)
    book.observe("Jan 5, 85", model("Jan 5, 85"), -0.01)
    assert not book.accepted("Aa N, N") and book.shape(dates[0]) in ("Aa 9, 9999", "Aa 99, 9999")


def test_a_stored_program_of_an_exact_shape_still_answers_its_rows():
    book = ProgramBook(guard=None)
    dates = [d for d in month_dates(4) if d[:3] in ("Jan", "Feb")]
    feed(book, dates[: INDUCE_ROWS + VERIFY_ROWS], month_date)
    stored = [{**r, "shape": "Aa 99, 9999"} for r in book.records()]  # as a store written before "Aa N, N"
    later = ProgramBook(guard=None)
    assert later.adopt(stored) == 1
    assert later.apply("Feb 12, 1977") == "1977-02-12" and later.apply("Feb 2, 1977") is None


def test_two_digit_years_by_a_pivot_learned_from_the_model():
    program = induce("99/99/99", [("01/02/85", "1985-01-02"), ("03/04/07", "2007-03-04"), ("05/06/31", "1931-05-06")])
    assert program.describe() == "century($5) '-' copy($1) '-' copy($3)"
    assert program.run(tokens("09/09/90")) == "1990-09-09" and program.run(tokens("09/09/03")) == "2003-09-09"
    assert program.run(tokens("09/09/20")) is None  # between the years seen: the model decides, and teaches
    assert program.teach(tokens("09/09/20"), "2020-09-09") and program.run(tokens("01/01/19")) == "2019-01-01"
    assert not program.teach(tokens("09/09/15"), "1915-09-09")  # a 1900s year below a 2000s one: no pivot


def test_guard_leaves_words_the_pairs_treat_irregularly_to_the_model():
    pairs = [("MCDONALD, JOHN", "John McDonald"), ("VAN DAM, JAN", "Jan van Dam"), ("SMITH, MR JOHN", "John Smith"),
             ("JONES, MARY", "Mary Jones")]
    words = WordTreatment.of(pairs)
    assert words.may_program("JONES", "Jones") and words.may_program("WHITE", "White")  # never shown: a value
    assert not words.may_program("MCGREGOR", "Mcgregor")  # begins like a pair's McDonald
    assert not words.may_program("VAN", "Van")  # the pairs write it lower case
    assert not words.may_program("MR", "Mr")  # the pairs drop it
    assert WordTreatment.from_dict(words.to_dict(), words.cases_dict(), words.rewrites_dict()) == words
    old = WordTreatment.from_dict(words.to_dict())
    assert old.cased is None and not old.may_program("JONES", "Jones")  # a bundle from before: letters by map only


def test_guarded_rows_go_to_the_model_and_still_test_the_program():
    pairs = [("MCDONALD, JOHN", "John McDonald"), ("JONES, MARY", "Mary Jones")]
    book = ProgramBook(guard=WordTreatment.of(pairs).may_program)
    values = names(INDUCE_ROWS + VERIFY_ROWS + 5)
    feed(book, values[: INDUCE_ROWS + VERIFY_ROWS], last_first)
    assert book.accepted("AA, AA")
    assert book.apply("MCGREGOR, IVAN") is None  # begins like the pairs' McDonald: the model's row
    assert book.apply(values[-1]) == last_first(values[-1])
    book.observe("MCGREGOR, OLGA", "Olga McGregor", -0.01)  # and what the model says of it counts:
    assert book.apply(values[-1]) is None  # a layout whose rows the program does not describe loses it


def test_a_program_output_that_drops_a_word_the_pairs_keep_is_left_to_the_model():
    pairs = [("Mar Lamas Jr.", "Mar Lamas"), ("Ann Bell Jr.", "Ann Bell"), ("Ivo Mark Roth.", "Ivo Roth")]
    words = WordTreatment.of(pairs)
    book = ProgramBook(words.may_program, lambda text, output: not words.disagrees(text, output))

    def model(text: str) -> str:  # drops a suffix, keeps the surname
        first, second, third = text.rstrip(".").split()
        return f"{first} {second}" if third == "Jr" else f"{first} {third}"

    values = [f"{f.title()} {last.title()} Jr." for f in FIRST for last in SURNAMES][: INDUCE_ROWS + VERIFY_ROWS]
    feed(book, values, model)  # every row the program was read off and verified on had a suffix
    assert book.apply("Zoe Hall Jr.") == "Zoe Hall"
    assert book.apply("Zoe Hall Quist.") is None  # a surname no pair dropped: not the program's to drop


def test_a_program_row_is_as_sure_as_a_row_of_its_shape_is_on_average():
    """Its confidence is calibrated from the mean probability of the decoded rows of its shape: one
    unsure row in 24 (most likely a wrong one) makes every program row of the shape less sure."""
    sure = ShapeBook(logprobs=[-0.001] * 24)
    assert math.isclose(ProgramBook.logprob_of(sure), -0.001)
    one_unsure = ShapeBook(logprobs=[-0.001] * 23 + [-20.0])
    assert math.isclose(ProgramBook.logprob_of(one_unsure), math.log(23 / 24 * math.exp(-0.001)), rel_tol=1e-6)
    assert ProgramBook.logprob_of(ShapeBook()) is None


def test_rows_are_picked_by_hash_not_by_order():
    values = [f"v{i}" for i in range(100)]
    assert pick_rows(values, 10) == pick_rows(list(reversed(values)), 10)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SURNAMES), st.sampled_from(FIRST), st.integers(1, 28)), min_size=60,
                max_size=120, unique=True), st.sampled_from(["{l}, {f} ({d})", "{f} {l} {d}", "{d}-{l}/{f}"]))
def test_an_accepted_program_reproduces_a_deterministic_model(rows, layout):
    def model(text: str) -> str:  # a deterministic rewrite, as a model that learned the layout is
        toks = [t for t in tokens(text) if t.isalnum()]
        digits = next(t for t in toks if t.isdecimal())
        letters = [t for t in toks if t.isalpha()]
        return f"{letters[1].title()} {letters[0].lower()} #{digits.zfill(3)}"

    values = [layout.format(l=last, f=first, d=day) for last, first, day in rows]
    book = ProgramBook(guard=None)
    feed(book, values[: INDUCE_ROWS + VERIFY_ROWS], model)
    for value in values[INDUCE_ROWS + VERIFY_ROWS :]:
        answer = book.apply(value)
        assert answer is None or answer == model(value)


def test_a_layout_without_a_program_is_split_by_what_the_pairs_do_with_its_words():
    def model(text: str) -> str:  # drops a title, else a middle name
        first, second, third = text.split()
        return f"{second} {third}" if first == "Dr" else f"{first} {third}"

    book = ProgramBook(guard=None, mark=lambda word: "r" if word == "Dr" else "")
    rng = random.Random(5)
    titled = [f"Dr {f.title()} {last.title()}" for f in FIRST for last in SURNAMES]
    plain = [f"{f.title()} {m.title()} {last.title()}" for f in FIRST for m in FIRST for last in SURNAMES[:5]]
    mixed = rng.sample(titled, 20) + rng.sample(plain, 20)
    rng.shuffle(mixed)
    feed(book, mixed, model)
    assert not book.accepted("Aa Aa Aa") and book.needed("Aa Aa Aa") == 0  # one layout, two treatments
    assert book.shape("Dr Zoe Hall") == "Aa Aa Aa [r..]" and book.shape("Zoe Ivan Hall") == "Aa Aa Aa"
    feed(book, [v for v in titled if v not in mixed][: INDUCE_ROWS + VERIFY_ROWS], model)
    assert book.accepted("Aa Aa Aa [r..]") and book.apply("Dr Zoe Hall") == "Zoe Hall"
    assert book.apply("Zoe Ivan Hall") is None


def test_stored_programs_that_cannot_be_read_are_left_out_not_fatal(tmp_path, caplog):
    import json

    import sqlalchemy as sa

    from strseq_tasks.data.db import PROGRAMS, job_tables
    from strseq_tasks.jobs.program_store import load_programs, save_programs

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    meta, _ = job_tables()
    meta.create_all(engine)
    book = ProgramBook(guard=None)
    feed(book, names(INDUCE_ROWS + VERIFY_ROWS), last_first)
    assert save_programs(engine, None, "sha1", book) == 1
    with engine.begin() as conn:  # a row cut short, and one edited by hand
        for shape, program in [("Aa", "{not json"), ("AA", json.dumps({"status": "accepted", "parts": [["copy"]]}))]:
            conn.execute(sa.text(f"INSERT INTO {PROGRAMS} (model_sha, shape, status, program, updated) "
                                 "VALUES ('sha1', :s, 'accepted', :p, '2026-12-07 00:00:00')"),
                         {"s": shape, "p": program})
    fresh = ProgramBook(guard=None)
    assert load_programs(engine, None, "sha1", fresh) == 1
    assert fresh.apply("WHITE, BOB") == "Bob White"
    assert "2 stored row(s) of strseq_programs could not be read" in caplog.text
