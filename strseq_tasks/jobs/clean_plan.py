"""What a cleaning batch will do, decided without a database: the pure half of ``jobs.clean``.

A batch is read (``data.batches.read_batches``), its rows are sorted (``select_rows``: not text,
decided by a person, done by this model version before, empty, or to predict), predicted, and
planned (``plan_batch``): the updates, their audit rows, the review rows, the processed markers and
the person's values found in the column. ``jobs.clean`` then applies the plan in one transaction.

A person's decision wins over every model: a row with a decision in force is never predicted, and
a value strseq did not write is never overwritten (``RowHistory``). They take plain values and
return plain values, so the decision is tested on three rows with no database
(``tests/unit/test_clean_plan.py``).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from strseq_tasks.core.metrics import char_diff
from strseq_tasks.core.shapes import ASCII_ALNUM, Familiar, lost_letters, text_shape
from strseq_tasks.core.vocab import normalize_text
from strseq_tasks.core.words import WordTreatment, last_word
from strseq_tasks.data.batches import NOT_TEXT
from strseq_tasks.data.db import key_text, value_hash

CHANGED, UNCHANGED, REVIEW_LOW, REVIEW_LONG, SKIPPED = "changed", "unchanged", "low_confidence", "too_long", "skipped"
REVIEW_WIDE = "longer_than_column"  # a suggestion the output column (VARCHAR(n)) cannot hold
REVIEW_REDECIDE = "changed_since_decision"  # the input changed after a person decided the row
REVIEWED = (REVIEW_LOW, REVIEW_LONG, REVIEW_WIDE, REVIEW_REDECIDE)
FOUND_BY = "found in the column"  # decided_by of a value a person typed into the column directly


def outcome(value: str | None, prediction, threshold: float, max_chars: int | None = None) -> str:
    """What happens to one row: skipped, unchanged, changed, or one of the review reasons.
    ``max_chars``: what the output column holds (``VARCHAR(n)``), if it has a limit."""
    if value is None or not value.strip():
        return SKIPPED
    if prediction.status == "too_long":
        return REVIEW_LONG
    # the model reads NFC (vocab.normalize_text): its copy of a decomposed "é" is precomposed, a
    # change of bytes nobody asked for; such a value is left as it is
    if prediction.text == value or prediction.text == normalize_text(value):
        return UNCHANGED
    if prediction.confidence < threshold:
        return REVIEW_LOW
    return REVIEW_WIDE if max_chars is not None and len(prediction.text) > max_chars else CHANGED


def new_words(value: str | None, words: WordTreatment | None) -> str | None:
    """A review row's ``new_words``: the words of ``value`` that no pair of the model showed,
    space-separated ('' for none); None when the model's bundle does not say."""
    found = None if words is None or value is None else words.new_words(value)
    return None if found is None else " ".join(found)


def signals(value: str | None, suggestion: str | None, familiar: Familiar | None) -> str | None:
    """A review row's ``signals``: what sets the row apart from the model's training inputs, in
    words, '; '-separated, the reasons its confidence was lowered (``Familiar.flags``, which
    calibration weighs): a layout, characters or a word treatment no pair showed, a letter no pair
    held that the suggestion drops. '' for none; None when the model's bundle does not say."""
    if familiar is None or value is None:
        return None
    said = []
    if familiar.shapes is not None and (shape := text_shape(value)) not in familiar.shapes:
        said.append(f"a layout no pair showed ({shape})")
    if familiar.chars is not None:
        known = set(familiar.chars)
        if unseen := sorted(set(value) - known):
            said.append(f"character{'s' * (len(unseen) > 1)} no pair held: {_listed(unseen)}")
        if suggestion is not None and (lost := lost_letters(value, suggestion, known | ASCII_ALNUM)):
            said.append(f"the suggestion drops {_listed(lost)}, which no pair held")
    if suggestion is not None and familiar.words is not None and familiar.words.ends_outside(suggestion):
        said.append(f"the suggestion ends in a word no pair's target ended in ('{last_word(suggestion)}')")
    elif suggestion is not None and familiar.words is not None and familiar.words.disagrees(value, suggestion):
        said.append("the suggestion treats a word unlike the pairs did")
    return "; ".join(said)


def _listed(chars: Sequence[str], most: int = 5) -> str:
    named = ", ".join(map(_named, chars[:most]))
    return named + (f" and {len(chars) - most} more" if len(chars) > most else "")


def _named(char: str) -> str:
    """A character as a reviewer can read it: itself in quotes, or its name ('no-break space')."""
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return unicodedata.name(char, f"U+{ord(char):04X}").lower()


def repeated_keys(keys: Sequence[str]) -> list[str]:
    """Keys that stand on more than one row of a batch (sorted): such a key names no one row."""
    seen, twice = set(), set()
    for key in keys:
        (twice if key in seen else seen).add(key)
    return sorted(twice)


@dataclass(frozen=True)
class RowHistory:
    """What strseq's tables say about a batch's keys, beyond this model's markers (``jobs.clean``
    reads it): a person's decisions and strseq's own writes, so that no run overwrites a person."""

    decided: dict[str, str] = field(default_factory=dict)  # key -> value_hash of a decision in force
    written: dict[str, tuple] = field(default_factory=dict)  # key -> (old, new, reverted) of strseq's last change
    reviewing: dict[str, str] = field(default_factory=dict)  # key -> the value an open review row was about

    def person_value(self, key: str, value: str | None, output: str | None, in_place: bool) -> str | None:
        """The input a value someone else put in the row was for, if the row holds one: in an
        output column, any value strseq did not write there last; in place, a value changed after
        strseq changed it or sent it to review. ``None``: the row holds nothing of a person's."""
        last = self.written.get(key)
        if not in_place:
            if output is None or (last is not None and not last[2] and output == last[1]):
                return None
            return value
        if last is not None and not last[2] and value != last[1]:
            return last[0]  # strseq changed old -> new; the row now holds a third value
        if last is None and key in self.reviewing and value != self.reviewing[key]:
            return self.reviewing[key]
        return None


@dataclass
class Selection:
    todo: list[tuple]  # rows to predict: (key, value, current output or None)
    skipped: int = 0  # empty, or not text
    already_done: int = 0  # this model version handled them and the value is as it left it
    not_text: list[str] = field(default_factory=list)  # keys of BLOBs and bytes that are not UTF-8
    decided: int = 0  # a person's decision is in force, or a person's value was found: left alone
    found: list[tuple] = field(default_factory=list)  # (key, input it was for, value found): to record
    redecide: set = field(default_factory=set)  # keys decided for an input that changed since: review only


def select_rows(rows: Sequence[tuple], done: dict[str, tuple[str, str]], in_place: bool,
                history: RowHistory | None = None) -> Selection:
    """Sort a batch's rows ((key, value, current output) as ``read_batches`` gives them, with
    ``NOT_TEXT`` for a value that is not text). ``done``: key -> (value hash, outcome) of this
    model version's markers; ``history``: decisions and strseq's own writes (None: not looked at)."""
    selection = Selection([])
    for row in rows:
        key, value = key_text(row[0]), row[1]
        if value is NOT_TEXT or (not in_place and row[2] is NOT_TEXT):
            selection.not_text.append(key)  # no audit row could hold it: the row is left alone, every run
            selection.skipped += 1
            continue
        output = value if in_place else row[2]
        decision = history and history.decided.get(key)
        if decision and decision == value_hash(value):  # the input is what the person decided on
            selection.decided += 1
            continue
        source = history and history.person_value(key, value, output, in_place)
        if source is not None:
            selection.found.append((key, source, output))
            selection.decided += 1
            continue
        # a marker holds the hash of the value its run left in the input column (the new value
        # when cleaning in place): if the row still holds it, this model version is done with it;
        # unless the run wrote an output column that is empty now (dropped and re-created, reset)
        hashed, kind = done.get(key, (None, None))
        emptied = not in_place and kind == CHANGED and row[2] is None
        if hashed == value_hash(value) and not emptied:
            selection.already_done += 1
        elif value is None or not value.strip():
            selection.skipped += 1
        else:
            selection.todo.append(row)
            if decision:
                selection.redecide.add(key)
    return selection


@dataclass(frozen=True)
class Target:
    """Where a run writes and with what: plain values, no database objects."""

    run_id: str
    table: str
    column: str  # the output column (the input column itself when in place)
    in_place: bool
    max_chars: int | None  # VARCHAR(n) of the output column
    model_name: str
    model_version: int | None
    model_sha: str
    threshold: float
    familiar: Familiar | None = None  # what the model learned from (``ModelIdentity.familiar``)


@dataclass
class BatchPlan:
    updates: list[tuple] = field(default_factory=list)  # (key, value read, output read, new value)
    audit: list[dict] = field(default_factory=list)
    review: list[dict] = field(default_factory=list)
    markers: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)  # a person's values found in the column
    unchanged: int = 0
    reviewed: int = 0
    sample: list[dict] = field(default_factory=list)


def found_decision(target: Target, key: str, source: str | None, value: str | None, now: dt.datetime) -> dict:
    """The decision row of a value a person put in the column directly (kept, and learned from)."""
    return {"table_name": target.table, "column_name": target.column, "key": key, "action": "hand_edit",
            "source_value": source, "value": value, "suggestion": None, "confidence": None,
            "value_hash": value_hash(value if target.in_place else source), "review_id": None,
            "run_id": target.run_id, "decided_by": FOUND_BY, "note": None, "decided_at": now, "status": "active"}


def plan_batch(todo: Sequence[tuple], predictions: Sequence, target: Target, now: dt.datetime,
               sample_room: int, redecide: set | frozenset = frozenset()) -> BatchPlan:
    """The updates, audit rows, review rows and markers for ``todo``'s rows and their predictions.
    Rows in ``redecide`` (a person decided them for another input) are only ever suggested.

    An update changes the row only if it still holds what was read; ``jobs.clean`` drops the audit
    row and the marker of an update that found the row changed meanwhile. An output column that
    already holds the answer (a new model version agreeing with the last) is not written again,
    nor asked about where the new version is less sure of it than the threshold (the version that
    wrote it was sure, and the two agree): counted unchanged, its marker ``changed`` (so an output
    column emptied later is seen)."""
    plan = BatchPlan()
    for row, pred in zip(todo, predictions, strict=True):
        key, value = key_text(row[0]), row[1]
        kind = outcome(value, pred, target.threshold, target.max_chars)
        if key in redecide and kind != SKIPPED:
            kind = REVIEW_REDECIDE
        # an earlier model version wrote it (a person's value never comes here: ``select_rows``)
        held = kind in (CHANGED, REVIEW_LOW) and not target.in_place and row[2] == pred.text
        if held:
            kind = CHANGED
        if kind == CHANGED and not held:
            old = value if target.in_place else row[2]
            plan.updates.append((row[0], value, old, pred.text))
            plan.audit.append({"run_id": target.run_id, "table_name": target.table, "key": key,
                               "column_name": target.column, "old_value": old, "new_value": pred.text,
                               "source_value": value, "confidence": pred.confidence,
                               "model_name": target.model_name, "model_version": target.model_version,
                               "applied_at": now})
            if len(plan.sample) < sample_room:
                plan.sample.append({"key": row[0], "before": value, "after": pred.text,
                                    "confidence": round(pred.confidence, 3), "diff": char_diff(value, pred.text)})
        elif kind in REVIEWED:
            plan.review.append({"run_id": target.run_id, "table_name": target.table, "key": key,
                                "column_name": target.column, "value": value,
                                "suggestion": None if pred.status == "too_long" else pred.text,
                                "confidence": pred.confidence, "reason": kind, "status": "open", "created": now,
                                "new_words": new_words(value, target.familiar and target.familiar.words),
                                "signals": signals(value, None if pred.status == "too_long" else pred.text,
                                                   target.familiar)})
        left = pred.text if (kind == CHANGED and target.in_place) else value
        plan.markers.append({"table_name": target.table, "column_name": target.column, "model_sha": target.model_sha,
                             "key": key, "value_hash": value_hash(left), "outcome": kind, "run_id": target.run_id})
        plan.unchanged += kind == UNCHANGED or held  # nothing written, nothing audited
        plan.reviewed += kind in REVIEWED
    return plan
