"""What a bundle's files must hold before any of their values is used: types, ranges, shapes.

``bundle.read_manifest`` proves a bundle's files are those it was written with (sha256); a tool
that edits a file and recomputes the checksums gets past that. This module checks that what the
files say makes sense: ``check_manifest`` the manifest of a model or LM bundle (as it is read),
``read_vocab`` and ``read_known`` the vocabulary and known-values files. Every failure is a
``BundleError`` naming the file and the field.

Torch-free (``vocab`` and ``known`` use numpy and rapidfuzz only).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from strseq_tasks.core.calibration import Calibration
from strseq_tasks.core.known import KnownValues
from strseq_tasks.core.shapes import MAX_SHAPES
from strseq_tasks.core.vocab import SPACES_COLLAPSE, SPACES_KEEP, SPECIALS, CharVocab
from strseq_tasks.core.words import CASING_KEYS, MAX_WORDS
from strseq_tasks.errors import StrseqError
from strseq_tasks.serve.identity import content_sha256, left_out

MODEL_FORMAT = "strseq-bundle/1"  # a model bundle (bundle.py)
UNEXPORTED_FORMAT = "strseq-unexported/1"  # a training kept after its export failed (unexported.py)
LM_FORMAT = "strseq-lm/1"  # a language-model bundle (lm_bundle.py)
TRANSDUCER_FORMAT = "strseq-pretrained/1"  # a pretrained encoder-decoder (learn/transfer.py)

# The longest input a model may accept (ModelConfig.max_len): training refuses more
# (learn/build.py: train_bundle). A row's copy map is 3 * length x (vocabulary + its unseen
# characters) floats: at 1,024 characters and 32,768 characters of vocabulary, 440 MB at worst.
MAX_LEN_CEILING = 1024
MAX_VOCAB = 32_768  # characters (with the specials) in a vocabulary
MAX_DIM = 2048  # any layer size of a model or LM (the defaults are 256 at most)
MAX_BEAM = 64
MAX_KNOWN_DISTANCE = 32  # edits within which an input may snap to a known value (the default is 2)
MAX_PRIOR_WEIGHT = 100.0  # training chooses among 0 to 4
MAX_CALIBRATION = 1e6  # |a|, |b| and the shifts of the Platt scaling
VOCAB_FORMAT = "strseq-charvocab/1"
MODEL_SIZES = ("emb_dim", "case_dim", "enc_hidden", "dec_hidden", "attn_dim", "loc_filters", "loc_kernel")
LM_SIZES = ("emb_dim", "case_dim", "enc_hidden", "dec_hidden")
_WORD_KEY = re.compile("[0-9a-f]{16}")  # core.words.WordTreatment.key
CALIBRATION_KEYS = tuple(Calibration().to_dict())
MANIFEST_NAME = "manifest.json"


class BundleError(StrseqError):
    """A model folder that is missing, incomplete, of another format or tampered with."""


class _Invalid(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"field {field!r} {problem}")


def _get(data: dict, field: str, key: str, required: bool = True):
    if not isinstance(data, dict):
        raise _Invalid(field or "(the whole file)", f"must be a JSON object, not {type(data).__name__}")
    if key not in data:
        if required:
            raise _Invalid(f"{field}.{key}" if field else key, "is missing")
        return None
    return data[key]


def _int(value, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(field, f"must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise _Invalid(field, f"must be between {low:,} and {high:,}, not {value:,}")
    return value


def _number(value, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(field, f"must be a finite number, not {value!r}")
    if not low <= value <= high:
        raise _Invalid(field, f"must be between {low:g} and {high:g}, not {value:g}")
    return float(value)


def _text(value, field: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Invalid(field, f"must be text, not {value!r}")
    return value


def _sizes(config, field: str, names: tuple[str, ...]) -> None:
    _int(_get(config, field, "vocab_size"), f"{field}.vocab_size", len(SPECIALS) + 1, MAX_VOCAB)
    for name in names:
        value = _get(config, field, name, required=False)
        if value is not None:
            _int(value, f"{field}.{name}", 1, MAX_DIM)
    dropouts = ("dropout", "prev_char_dropout") if field == "model_config" else ("dropout",)
    for name in dropouts:
        value = _get(config, field, name, required=False)
        if value is not None:
            _number(value, f"{field}.{name}", 0.0, 0.99)


def _calibration(data, field: str) -> None:
    if not isinstance(data, dict):
        raise _Invalid(field, f"must be an object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(CALIBRATION_KEYS))
    if unknown:
        raise _Invalid(f"{field}.{unknown[0]}", f"is not a calibration parameter ({', '.join(CALIBRATION_KEYS)})")
    for key, value in data.items():
        _number(value, f"{field}.{key}", -MAX_CALIBRATION, MAX_CALIBRATION)


def _decoding(decoding) -> None:
    if decoding is None:  # optional, as every field below that the runtime has a default for
        return
    for key, check, low, high in (("beam", _int, 1, MAX_BEAM), ("identity_margin", _number, 0.0, 1e6)):
        if (value := _get(decoding, "decoding", key, required=False)) is not None:
            check(value, f"decoding.{key}", low, high)
    spaces = _get(decoding, "decoding", "spaces", required=False)
    if spaces is not None and spaces not in (SPACES_KEEP, SPACES_COLLAPSE):
        raise _Invalid("decoding.spaces", f"must be {SPACES_KEEP!r} or {SPACES_COLLAPSE!r}, not {spaces!r}")
    shapes = _get(decoding, "decoding", "shapes", required=False)
    if shapes is not None and (not isinstance(shapes, list) or len(shapes) > MAX_SHAPES):
        raise _Invalid("decoding.shapes", f"must be a list of at most {MAX_SHAPES:,} shapes")
    for i, shape in enumerate(shapes or ()):
        if not isinstance(shape, str) or len(shape) > MAX_LEN_CEILING:
            raise _Invalid(f"decoding.shapes[{i}]", f"must be a string of at most {MAX_LEN_CEILING} characters, "
                                                    f"not {shape!r}"[:200])
    chars = _get(decoding, "decoding", "input_chars", required=False)
    if chars is not None and (not isinstance(chars, str) or len(chars) > MAX_VOCAB):
        raise _Invalid("decoding.input_chars", f"must be a string of at most {MAX_VOCAB:,} characters")
    words = _get(decoding, "decoding", "words", required=False)
    if words is not None:
        if not isinstance(words, dict) or not ({"always_rewritten", "ever_rewritten"} <= set(words)
                                               <= {"always_rewritten", "ever_rewritten", "shown"}):
            raise _Invalid("decoding.words", "must be an object with 'always_rewritten' and 'ever_rewritten' "
                                             "(and 'shown', since 2026-12)")
    cases = _get(decoding, "decoding", "word_cases", required=False)
    if cases is not None and (not isinstance(cases, dict) or set(cases) != set(CASING_KEYS)):
        raise _Invalid("decoding.word_cases", f"must be an object with the lists {', '.join(CASING_KEYS)}")
    zeros = _get(decoding, "decoding", "trailing_zeros", required=False)
    if zeros is not None and zeros not in ("dropped", "kept"):
        raise _Invalid("decoding.trailing_zeros", f"must be 'dropped' or 'kept', not {zeros!r}"[:200])
    rewrites = _get(decoding, "decoding", "word_rewrites", required=False)
    if rewrites is not None and (not isinstance(rewrites, dict) or len(rewrites) > MAX_WORDS
                                 or not all(isinstance(k, str) and _WORD_KEY.fullmatch(k) for k in rewrites)):
        raise _Invalid("decoding.word_rewrites", f"must be an object of at most {MAX_WORDS:,} word keys "
                                                 "(16 hex digits each), each with a list of word keys")
    last = _get(decoding, "decoding", "word_last", required=False)  # a list of word keys (since 2026-12-08)
    for where, listed in [(f"{name}.{k}", v) for name, lists in (("words", words), ("word_cases", cases),
                                                                  ("word_rewrites", rewrites))
                          for k, v in (lists or {}).items()] + ([("word_last", last)] if last is not None else []):
        if (not isinstance(listed, list) or len(listed) > MAX_WORDS
                or not all(isinstance(w, str) and _WORD_KEY.fullmatch(w) for w in listed)):
            raise _Invalid(f"decoding.{where}", f"must be a list of at most {MAX_WORDS:,} keys of 16 hex digits")
    known = _get(decoding, "decoding", "known_values", required=False)
    if not known:
        return
    field = "decoding.known_values"
    if _get(known, field, "file") != "known_values.json":
        raise _Invalid(f"{field}.file", f"must be 'known_values.json', not {known['file']!r}")
    _int(_get(known, field, "values"), f"{field}.values", 0, 10**9)
    _int(_get(known, field, "max_distance"), f"{field}.max_distance", 0, MAX_KNOWN_DISTANCE)
    _sha256(_get(known, field, "fingerprint"), f"{field}.fingerprint")
    _number(_get(known, field, "prior_weight", required=False) or 0.0, f"{field}.prior_weight", 0.0,
            MAX_PRIOR_WEIGHT)


def _sha256(value, field: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or set(value) - set("0123456789abcdef"):
        raise _Invalid(field, "must be a sha256 (64 hexadecimal digits)")
    return value


def _identity(manifest: dict) -> None:
    """``content_sha256`` (absent from bundles written before it was recorded) is what the bundle's
    content gives: the cleaning job trusts it to say two bundles are the same model.
    ``training_inputs.sha256`` (a retrain's, jobs/retrain_inputs.py) is a sha256."""
    recorded = _get(manifest, "", "content_sha256", required=False)
    if recorded is not None and _sha256(recorded, "content_sha256") != content_sha256(manifest):
        raise _Invalid("content_sha256", "is not the sha256 of the bundle's content (its graphs, vocabulary and "
                                         "decoding settings): the manifest was edited")
    inputs = _get(manifest, "", "training_inputs", required=False)
    if inputs is not None:
        _sha256(_get(inputs, "training_inputs", "sha256"), "training_inputs.sha256")


def _precision(info, files: dict) -> None:
    if info is None:
        return
    default = _get(info, "precision", "default")
    if default not in ("fp32", "int8"):
        raise _Invalid("precision.default", f"must be 'fp32' or 'int8', not {default!r}")
    int8 = _get(info, "precision", "int8", required=False)
    if int8 is None:
        if default == "int8":
            raise _Invalid("precision.int8", "is missing, yet int8 graphs are the default")
    else:
        listed = _get(int8, "precision.int8", "files")
        if listed != ["encoder.int8.onnx", "decoder_step.int8.onnx"] or any(name not in files for name in listed):
            raise _Invalid("precision.int8.files", "must name the two int8 graphs, each with its sha256 in 'files'")
        _calibration(_get(int8, "precision.int8", "calibration"), "precision.int8.calibration")
        gate = _get(int8, "precision.int8", "gate")
        for key in ("rows", "changed"):
            _int(_get(gate, "precision.int8.gate", key), f"precision.int8.gate.{key}", 0, 10**9)
        for key in ("exact_fp32", "exact_int8"):
            _number(_get(gate, "precision.int8.gate", key), f"precision.int8.gate.{key}", 0.0, 1.0)
    refused = _get(info, "precision", "int8_refused", required=False)
    if refused is not None:
        _text(_get(refused, "precision.int8_refused", "reason"), "precision.int8_refused.reason", optional=True)


def check_model_config(config: dict) -> None:
    """Raise ``ValueError`` naming the field unless a model's config is one a bundle may hold
    (training checks its model with this before it trains: what it writes must load)."""
    _sizes(config, "model_config", MODEL_SIZES)
    _int(_get(config, "model_config", "max_len"), "model_config.max_len", 1, MAX_LEN_CEILING)


def _model_manifest(manifest: dict) -> None:
    _text(_get(manifest, "", "name", required=False), "name", optional=True)
    check_model_config(_get(manifest, "", "model_config"))
    _decoding(_get(manifest, "", "decoding", required=False))
    calibration = _get(manifest, "", "calibration", required=False)
    if calibration is not None:
        _calibration(calibration, "calibration")
    _runtime_only(manifest)
    _precision(_get(manifest, "", "precision", required=False), {**left_out(manifest), **manifest["files"]})
    _identity(manifest)


_GRAPHS = {"fp32": ("encoder.onnx", "decoder_step.onnx"), "int8": ("encoder.int8.onnx", "decoder_step.int8.onnx")}


def _runtime_only(manifest: dict) -> None:
    """A runtime copy (bundle_copy.py) left out the weights and, at most, the graphs of the
    precision it does not serve; each with its sha256, none of them still listed in ``files``."""
    runtime = _get(manifest, "", "runtime_only", required=False)
    if runtime is None:
        return
    gone = _get(runtime, "runtime_only", "left_out")
    if not isinstance(gone, dict):
        raise _Invalid("runtime_only.left_out", "must be an object of file names and their sha256")
    default = (manifest.get("precision") or {}).get("default", "fp32")
    allowed = {"weights.safetensors", *(n for p, names in _GRAPHS.items() if p != default for n in names)}
    for name, sha in gone.items():
        if name not in allowed or name in manifest["files"]:
            raise _Invalid(f"runtime_only.left_out.{name}", f"a runtime copy serving {default} graphs can leave "
                                                            f"out only {', '.join(sorted(allowed))}")
        _sha256(sha, f"runtime_only.left_out.{name}")


def _transducer_manifest(manifest: dict) -> None:
    _text(_get(manifest, "", "name", required=False), "name", optional=True)
    check_model_config(_get(manifest, "", "model_config"))


def _lm_manifest(manifest: dict) -> None:
    _text(_get(manifest, "", "name", required=False), "name", optional=True)
    config = _get(manifest, "", "lm_config")
    unknown = sorted(set(config) - {"vocab_size", "dropout", *LM_SIZES})
    if unknown:
        raise _Invalid(f"lm_config.{unknown[0]}", "is not a language-model setting")
    _sizes(config, "lm_config", LM_SIZES)
    heldout = _get(manifest, "", "heldout", required=False)
    bits = _get(heldout, "heldout", "bits_per_char", required=False) if heldout is not None else None
    if bits is not None:
        if not isinstance(bits, dict):
            raise _Invalid("heldout.bits_per_char", f"must be an object, not {type(bits).__name__}")
        for key, value in bits.items():
            _number(value, f"heldout.bits_per_char.{key}", 0.0, 1e6)


# weights file, config key, and tensor -> its shape: numbers, sizes of the config, "3*size"
MODEL_WEIGHTS = ("weights.safetensors", "model_config", {
        "embedding.rows.weight": ("vocab_size", "emb_dim"), "embedding.case.weight": (3, "case_dim"),
        "encoder.gru.weight_hh_l0": ("3*enc_hidden", "enc_hidden"), "encoder.keys.weight": ("attn_dim", "2*enc_hidden"),
        "step.cell.weight_hh": ("3*dec_hidden", "dec_hidden"), "step.out.weight": ("vocab_size", "dec_hidden"),
        "step.attention.conv.weight": ("loc_filters", 1, "loc_kernel")})
WEIGHT_SHAPES = {
    MODEL_FORMAT: MODEL_WEIGHTS, UNEXPORTED_FORMAT: MODEL_WEIGHTS, TRANSDUCER_FORMAT: MODEL_WEIGHTS,
    LM_FORMAT: ("lm.safetensors", "lm_config", {
        "embedding.rows.weight": ("vocab_size", "emb_dim"), "embedding.case.weight": (3, "case_dim"),
        "forward_rnn.weight_hh_l0": ("3*enc_hidden", "enc_hidden"),
        "cell.weight_hh": ("3*dec_hidden", "dec_hidden"), "out.weight": ("vocab_size", "dec_hidden")}),
}


def _tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor shapes from a safetensors file's header (8 bytes of length, then JSON), data unread."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= 100_000_000:
                raise ValueError(f"a header of {size:,} bytes")
            header = json.loads(f.read(size))
        return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BundleError(f"{path} is not a safetensors file: {exc}") from None


def _check_weights(folder: Path, manifest: dict, fmt: str) -> None:
    """The sizes in the manifest's config are those of the weights (and so of the graphs exported
    from them): a vocabulary or a layer size edited in the manifest alone shows here."""
    name, key, shapes = WEIGHT_SHAPES[fmt]
    if name not in manifest["files"]:  # model bundles may leave the weights out
        return
    config, found = manifest[key], _tensor_shapes(folder / name)
    for tensor, dims in shapes.items():
        sizes = [d.rpartition("*")[2] for d in dims if isinstance(d, str)]
        if any(size not in config for size in sizes):
            continue  # a size older bundles did not record
        want = [d if isinstance(d, int) else int(d.rpartition("*")[0] or 1) * config[d.rpartition("*")[2]]
                for d in dims]
        got = found.get(tensor)
        if got != want:
            named = [d.rpartition("*")[2] for d, w, g in zip(dims, want, got or [None] * len(want))
                     if isinstance(d, str) and (w != g or len(got or ()) != len(want))]
            raise BundleError(f"{folder / MANIFEST_NAME}: field '{key}.{'/'.join(dict.fromkeys(named))}' does not fit "
                              f"{name} (its {tensor} is {got}, the config makes it {want})")


def check_manifest(folder: Path, manifest: dict, fmt: str) -> None:
    """Raise ``BundleError`` (naming the file and the field) unless the values of a manifest of
    format ``fmt`` (a model bundle, a kept training or an LM bundle) are of the types and in the
    ranges strseq writes and reads, and its sizes those of the bundle's weights."""
    check = {MODEL_FORMAT: _model_manifest, UNEXPORTED_FORMAT: _model_manifest, LM_FORMAT: _lm_manifest,
             TRANSDUCER_FORMAT: _transducer_manifest}.get(fmt)
    if check is None:
        return
    try:
        check(manifest)
    except _Invalid as exc:
        raise BundleError(f"{Path(folder) / MANIFEST_NAME}: {exc}") from None
    _check_weights(Path(folder), manifest, fmt)


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None


def read_vocab(folder: Path, size: int) -> CharVocab:
    """The bundle's ``vocab.json``, checked: its format, the four specials in order, unique single
    characters, and ``size`` entries in all (the size the manifest's config, and so the graphs, have)."""
    path = Path(folder) / "vocab.json"
    data = _load_json(path)
    try:
        if _get(data, "", "format") != VOCAB_FORMAT:
            raise _Invalid("format", f"must be {VOCAB_FORMAT!r}, not {data['format']!r}")
        if _get(data, "", "specials") != list(SPECIALS):
            raise _Invalid("specials", f"must be {list(SPECIALS)}, not {data['specials']!r}")
        chars = _get(data, "", "chars")
        if not isinstance(chars, list):
            raise _Invalid("chars", f"must be a list, not {type(chars).__name__}")
        for i, char in enumerate(chars):
            if not isinstance(char, str) or len(char) != 1:
                raise _Invalid(f"chars[{i}]", f"must be one character, not {char!r}")
        if len(set(chars)) != len(chars):
            repeated = next(c for i, c in enumerate(chars) if c in chars[:i])
            raise _Invalid("chars", f"lists {repeated!r} twice")
        if len(SPECIALS) + len(chars) != size:
            raise _Invalid("chars", f"has {len(chars)} characters; with the {len(SPECIALS)} specials that is "
                                    f"{len(SPECIALS) + len(chars)}, but the model's vocab_size is {size}")
    except _Invalid as exc:
        raise BundleError(f"{path}: {exc}") from None
    return CharVocab(tuple(chars))


def read_known(folder: Path, info: dict) -> KnownValues:
    """The bundle's ``known_values.json``, checked against the manifest's ``decoding.known_values``
    (``info``): distinct non-blank strings, as many as it says, with its fingerprint and distance."""
    path = Path(folder) / "known_values.json"
    data = _load_json(path)
    try:
        values = _get(data, "", "values")
        if not isinstance(values, list):
            raise _Invalid("values", f"must be a list, not {type(values).__name__}")
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise _Invalid(f"values[{i}]", f"must be a non-blank string, not {value!r}")
        distance = _int(_get(data, "", "max_distance"), "max_distance", 0, MAX_KNOWN_DISTANCE)
        known = KnownValues(values, max_distance=distance)
        if len(known) != len(values):
            raise _Invalid("values", f"repeats values ({len(values)} listed, {len(known)} distinct)")
        if len(known) != info["values"] or known.fingerprint() != info["fingerprint"]:
            raise _Invalid("values", "are not the values the manifest's decoding.known_values describes "
                                     "(count or fingerprint differ)")
        if distance != info["max_distance"]:
            raise _Invalid("max_distance", f"is {distance}, the manifest says {info['max_distance']}")
    except _Invalid as exc:
        raise BundleError(f"{path}: {exc}") from None
    return known
