"""A version's labels: its tags (``owner=data-team``) and a description, what people say about it.

They sit in ``versions/N/labels.json`` (``{"description": "...", "tags": {...}, "updated": "..."}``),
beside the bundle and its publication record. A version's bundle and record never change; its
labels may, at publish time (``strseq retrain --tag --description``) and afterwards (``strseq
models tag``/``describe``), each change one whole-file write under the model's lock
(``Registry.set_labels``). Everything here is pure: what a label may be, and the file's format,
checked on every read like an alias file.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strseq_tasks.data.urls import mask_url
from strseq_tasks.serve.refs import RegistryError

LABELS = "labels.json"
TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_TAG_VALUE = 256  # characters: a ticket, a team, a data release; not a document
MAX_TAGS = 50
MAX_DESCRIPTION = 2000
MAX_BYTES = 1 << 20  # 50 tags and a description are a few KB: a larger file is not a labels file


class LabelError(RegistryError, ValueError):
    """A tag or description that cannot be stored (a ValueError too: pydantic reports it as a field's error)."""


@dataclass(frozen=True)
class Labels:
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    updated: str = ""  # when they last changed ("" for a version never labelled)

    def edited(self, tags: Mapping[str, str] | None = None, remove: Iterable[str] = (),
               description: str | None = None, updated: str = "") -> Labels:
        """These labels with ``tags`` set, ``remove`` removed and ``description`` replaced (None:
        kept; "": removed); LabelError for a tag to remove that is not there, or too many tags."""
        kept = dict(self.tags)
        for key in remove:
            if key not in kept:
                raise LabelError(f"no tag {key!r} to remove (tags: {', '.join(sorted(kept)) or 'none'})")
            del kept[key]
        kept.update(check_tags(tags or {}))
        if len(kept) > MAX_TAGS:
            raise LabelError(f"a version holds at most {MAX_TAGS} tags; this would make {len(kept)}")
        text = self.description if description is None else check_description(description)
        return Labels(text, dict(sorted(kept.items())), updated)


def _odd_character(text: str, newlines: bool = False) -> str | None:
    """The first character a label must not hold (control, format, separator other than a space)."""
    for char in text:
        if not (char.isprintable() or (newlines and char == "\n")):
            return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"
    return None


def check_tag(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
        raise LabelError(f"invalid tag key {str(key)[:70]!r}: a letter, then letters, digits, '_', '.' or '-' "
                         "(at most 64 characters)")
    if not isinstance(value, str) or not value.strip():
        raise LabelError(f"tag {key!r} has no value: give {key}=VALUE (or --remove {key})")
    if len(value) > MAX_TAG_VALUE:
        raise LabelError(f"tag {key!r}: its value has {len(value)} characters (at most {MAX_TAG_VALUE}; "
                         "a longer text belongs in the description)")
    if odd := _odd_character(value):
        raise LabelError(f"tag {key!r}: its value holds {odd} (printable characters only)")
    return key, mask_url(value)  # a URL's password is never stored


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise LabelError("tags must be a mapping of key to value")
    if len(tags) > MAX_TAGS:
        raise LabelError(f"{len(tags)} tags: a version holds at most {MAX_TAGS}")
    return dict(check_tag(k, v) for k, v in tags.items())


def check_description(text: object) -> str:
    if not isinstance(text, str):
        raise LabelError("the description must be text")
    if len(text) > MAX_DESCRIPTION:
        raise LabelError(f"the description has {len(text)} characters (at most {MAX_DESCRIPTION})")
    if odd := _odd_character(text, newlines=True):
        raise LabelError(f"the description holds {odd} (printable characters and line breaks only)")
    return mask_url(text.strip())


def parse_tag(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as typed on the command line."""
    key, sep, value = text.partition("=")
    if not sep:
        raise LabelError(f"tag {text[:70]!r} is not KEY=VALUE (e.g. owner=data-team)")
    return check_tag(key.strip(), value.strip())


def parse_labels(raw: bytes) -> Labels:
    """The labels a file's bytes hold; ``ValueError`` saying what is wrong otherwise."""
    if len(raw) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"not a JSON object ({str(exc)[:80]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tags", {}), dict):
        raise ValueError('not {"description": TEXT, "tags": {KEY: VALUE}}')
    updated = data.get("updated", "")
    if not isinstance(updated, str):
        raise ValueError('"updated" is not text')
    try:
        return Labels(check_description(data.get("description", "")), check_tags(data.get("tags", {})), updated)
    except LabelError as exc:
        raise ValueError(str(exc)) from None


def labels_bytes(labels: Labels) -> bytes:
    return json.dumps({"description": labels.description, "tags": dict(labels.tags), "updated": labels.updated},
                      indent=2, ensure_ascii=False).encode("utf-8")


def tags_line(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items())
