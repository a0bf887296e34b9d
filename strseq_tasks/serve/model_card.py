"""A model card for each bundle (``MODEL_CARD.md``): what the model is for, what it learned
from, how well it did on pairs it never trained on, and where it is known to fail, in words a
reviewer reads before promoting it (after Mitchell et al., "Model Cards for Model Reporting",
and the Hugging Face hub's card sections).

Written from the manifest alone, so any bundle's card can be written again (``model_card``), and
left out of the model's identity (``identity.DESCRIPTIVE_FILES``): it describes the outputs, it
does not decide them. Torch-free, standard library only.
"""

from __future__ import annotations

CARD_FILE = "MODEL_CARD.md"
MANIFEST = "manifest.json"  # bundle.MANIFEST (bundle imports this module)

_METRICS = (  # (key in metrics.validation, label, how to print)
    ("exact_match", "exact match", "pct"), ("cer", "character error rate", "pct"),
    ("harm", "harm (right inputs the model changed)", "pct"),
    ("coverage_at_99", "coverage at 99% precision", "pct"),
    ("coverage_at_threshold", "rows applied at the threshold", "pct"),
    ("accuracy_at_threshold", "accuracy of the rows applied", "pct"), ("threshold", "confidence threshold", "num"),
    ("ece", "expected calibration error", "num"), ("rows", "validation rows", "int"),
)


def _figure(value, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:,}" if kind == "int" else f"{value:.3f}"


def _sizes(config: dict) -> str:
    keys = ("emb_dim", "enc_hidden", "dec_hidden", "attn_dim", "max_len")
    return ", ".join(f"{k} {config[k]}" for k in keys if k in config)


def _base(manifest: dict) -> str:
    base = manifest.get("pretrained")
    if not base:
        return "none: trained from random weights"
    if isinstance(base, dict):
        kind = base.get("kind") or base.get("format") or "pretrained model"
        name = base.get("name") or base.get("path") or ""
        return f"{kind} {name}".strip() + (f" (sha256 {str(base['sha256'])[:12]})" if base.get("sha256") else "")
    return str(base)


def model_card(manifest: dict, files: list[str] | None = None) -> str:
    """The card's markdown for a model bundle's ``manifest`` (any strseq version's); ``files``: the
    bundle's files (default: those the manifest lists, and the manifest)."""
    # long: the card's sections in reading order, each a few lines of text around the manifest's figures
    name = manifest.get("name", "model")
    data = manifest.get("data") or {}
    training = manifest.get("training") or {}
    validation = (manifest.get("metrics") or {}).get("validation") or {}
    decoding = manifest.get("decoding") or {}
    precision = (manifest.get("precision") or {}).get("default", "fp32")
    known = decoding.get("known_values")
    source = data.get("source") or data.get("pairs_source")
    lines = [
        f"# Model card: {name}", "",
        "A character-level encoder-decoder (GRU, attention and copy) that normalizes one column's dirty "
        "strings into their clean form, learned from curated `(dirty, clean)` pairs with strseq "
        f"{manifest.get('strseq_version', '')}. Served with onnxruntime ({precision} graphs); "
        "`manifest.json` beside this card holds every figure below and the sha256 of every file.", "",
        "## Intended use", "",
        "- Normalize values of the same kind and layouts as the training pairs (`strseq predict --model "
        "THIS_FOLDER`, `strseq clean`, or `strseq_tasks.serve.runtime.Normalizer` in Python).",
        "- Apply a change only at or above the confidence threshold; send the rest to a person "
        "(`strseq clean` does: `strseq_review`).",
        "- Not for free text, nor for values whose right form the pairs never show (a layout, a word or "
        "a character unlike every training input gets lower confidence, but can still be wrong).", "",
        "## Training data", "",
        f"- {data.get('pairs', 'n/a')} pairs: {data.get('train_pairs', 'n/a')} trained on, "
        f"{data.get('validation_pairs', 'n/a')} held out for validation (never trained on).",
        f"- Fingerprint of the pairs (sha256 over the sorted pairs): `{data.get('fingerprint', 'n/a')}`.",
        *([f"- Source: {source}."] if source else []),
        f"- Base model: {_base(manifest)}.",
        f"- Trained {training.get('epochs', 'n/a')} epochs, kept epoch {training.get('best_epoch', 'n/a')} "
        f"(stopped by {training.get('stopped', 'n/a')}); sizes: {_sizes(manifest.get('model_config') or {})}.",
        *([f"- Known values: {known.get('values', 0):,} (decoding prefers them within edit distance "
           f"{known.get('max_distance')})."] if known else []), "",
        "## Evaluation (validation pairs)", "",
        "| metric | value |", "|---|---:|",
        *[f"| {label} | {_figure(validation.get(key), kind)} |" for key, label, kind in _METRICS
          if key in validation],
        "",
        "Validation pairs come from the same curated set as the training pairs: a column's real values "
        "hold layouts and noise the pairs may not, so expect less on them. A retrain also scores each "
        "version on pairs held out from it and gates promotion on them (the registry records those).", "",
        "## Reliability (validation)", "",
        "| confidence | rows | mean confidence | accuracy |", "|---|---:|---:|---:|",
        *[f"| {r['bin']} | {r['rows']} | {r['confidence']:.3f} | {r['accuracy']:.3f} |"
          for r in manifest.get("reliability") or []],
        "",
        "## Limitations and risks", "",
        "- Values unlike the pairs (a layout, a character or a word no training input showed) are where "
        "the model is wrong most; their confidence is lowered, so they go to review at the threshold.",
        "- A confident wrong answer is rare but possible; the cleaning job audits every change it "
        "applies (`strseq revert` undoes a run).",
        "- Person names and other personal data may be in the pairs: the bundle keeps no pair as text "
        "(the pairs' words are stored as keyed hashes, their layouts as shapes such as `Aa, Aa`), but the "
        "graphs learned from them, and a known-values list, if given, is stored as it is.", "",
        "## Files", "",
        *[f"- `{f}`" for f in sorted(files if files is not None else [*(manifest.get("files") or []), MANIFEST])],
        "",
    ]
    return "\n".join(lines)
