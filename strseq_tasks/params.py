"""Every parameter a user sets, once: its name, default, bounds and help.

The job records (``RetrainParams`` and ``Gates`` in ``jobs/retrain.py``, ``CleanParams`` in
``jobs/clean_params.py``) build their pydantic fields from these (``field``), the ``strseq``
commands their options (``cli.common.option``), and ``TrainConfig`` its defaults, so a default, a
bound or a help text is written here and nowhere else. The option of a field is the field's name
with dashes (``max_epochs``: ``--max-epochs``) unless ``flags`` says otherwise; ``env`` names the
environment variable that stands in for it on the command line (``STRSEQ_DB``). Older spellings kept
working are hidden aliases (``cli/vocabulary.py``), not flags.

Standard library only: the command line reads this on a base install, before pydantic, Prefect
or SQLAlchemy are imported (``strseq predict`` on a CPU server has none of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    default: Any  # ... (Ellipsis): required
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    flags: tuple[str, ...] = ()  # the command-line spellings, when not just --name-with-dashes
    env: str | None = None  # the environment variable the command line reads when the option is left out

    def flag(self, name: str) -> str:
        """The option a user types for field ``name`` (the first spelling)."""
        return self.flags[0] if self.flags else "--" + name.replace("_", "-")

    def field(self, **extra):
        """This parameter as a pydantic field (pydantic is imported only here, by the records)."""
        from pydantic import Field

        bounds = {k: v for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
                  if v is not None}
        if "default_factory" not in extra:
            extra["default"] = self.default  # ... (Ellipsis): required
        if isinstance(self.default, float):  # "nan" and "inf" parse as floats: say so, not that nan > 1
            extra.setdefault("allow_inf_nan", False)
        return Field(description=self.help, **bounds, **extra)


# -- shared by several commands and jobs ---------------------------------------------------------
MAX_LEN = Param(128, "Longest input/target in characters the model accepts (longer rows are "
                "refused in pairs and sent to review when cleaning).", ge=8, le=1000)
THRESHOLD = Param(0.9, "Confidence threshold: predictions at least this confident are applied; the "
                  "rest go to review.", ge=0, le=1)
SEED = Param(0, "Random seed (split, augmentation, initialization).")
MAX_EPOCHS = Param(40, "Maximum epochs (early stopping usually ends sooner).", ge=1)
TRAIN_THREADS = Param(1, "torch threads for training (small GRUs train fastest on 1).", ge=1)
TRAIN_PRECISION = Param("int8", "int8 (or auto, the same when training): also write int8 graphs (1.1-1.3x "
                        "faster to run, by CPU) and serve them, unless they change more than --int8-max-changed "
                        "of the outputs on rows drawn from the pairs (then fp32 only); fp32: fp32 graphs only.")
INT8_MAX_CHANGED = Param(0.005, "Share of outputs int8 may change against fp32 before it is refused.",
                         ge=0, le=1)
RUN_PRECISION = Param("auto", "Graphs to run: auto (the model's int8 graphs when it has them, else "
                      "fp32), fp32 or int8.")
NO_PROGRAMS = Param(False, "Decode every distinct value with the model. By default a layout with many values gets a "
                    "rewrite program read off the model's own outputs, used only once it reproduced every one of "
                    "further outputs, and it answers the layout's other rows.", flags=("--no-programs",))


# -- strseq retrain / the strseq-retrain flow (RetrainParams) ------------------------------------
GATES = {
    "min_exact_match": Param(0.5, "Gate: held-out exact match at least this.", ge=0, le=1),
    "max_harm": Param(0.02, "Gate: held-out harm (clean inputs changed) at most this.", ge=0, le=1),
    "max_regression": Param(0.005, "Gate: exact match may trail production's by at most this.", ge=0, le=1),
}

RETRAIN = {
    "pairs": Param(..., "Curated pairs: a CSV/Parquet file, or a SQLAlchemy URL with --pairs-table or "
                   "--pairs-query."),
    "pairs_table": Param(None, "Table of pairs (database URL source)."),
    "pairs_query": Param(None, "SQL query returning the pairs (database URL source)."),
    "input_column": Param("input", "Column holding the dirty values."),
    "target_column": Param("target", "Column holding the clean values."),
    "registry": Param("models", "Registry folder or fsspec URL (s3://..., memory://...).", env="STRSEQ_REGISTRY"),
    "name": Param(..., "Model name in the registry."),
    "decisions": Param(None, "Database (SQLAlchemy URL) whose people's decisions (approved, rejected or edited "
                       "review rows, values typed into a cleaned column) join the pairs: a decision is a curated "
                       "pair."),
    "decisions_table": Param(None, "Only decisions about rows of this table (with --decisions)."),
    "decisions_column": Param(None, "Only decisions about this output column (with --decisions)."),
    "adapt_on": Param(None, "Unlabeled strings (file or database URL, e.g. the column to clean): adapt "
                      "the shipped character LM to them first and fine-tune from it."),
    "adapt_table": Param(None, "Table of --adapt-on (database URL)."),
    "adapt_query": Param(None, "Query of --adapt-on (database URL)."),
    "adapt_column": Param("input", "Column of --adapt-on."),
    "adapt_minutes": Param(3.0, "Time budget of the adaptation, in minutes.", gt=0),
    "pretrained": Param(None, "What fine-tuning starts from: `default` (the shipped pretrained "
                        "encoder-decoder), `none` (random weights), a pretrained model folder or an LM folder "
                        "(default: `default`; with --adapt-on, the shipped LM adapted to the column)."),
    "known_values": Param(None, "File(s) of valid output values (see `strseq train`)."),
    "heldout_fraction": Param(0.15, "Share of pairs held out (by a hash of the input) to compare the new "
                              "and the production model.", gt=0, lt=0.5),
    "min_pairs": Param(20, "Fewer valid pairs fail validation.", ge=4),
    "max_len": MAX_LEN,
    "seed": SEED,
    "max_epochs": MAX_EPOCHS,
    "max_minutes": Param(6.0, "Training time budget in minutes (keeps the best so far).", gt=0),
    "threads": TRAIN_THREADS,
    "precision": TRAIN_PRECISION,
    "model_sizes": Param(None, "Advanced: model sizes (emb_dim, enc_hidden, dec_hidden, ...) other than "
                         "the defaults."),
    "promote": Param(True, "Move `production` when the gates pass (--no-promote: publish as candidate "
                     "only, whatever the gates say).", flags=("--no-promote",)),
    "description": Param(None, "Description of the version this run publishes (what changed, why); `strseq "
                         "models describe` changes it later."),
    "tags": Param(None, "Tag of the version this run publishes, KEY=VALUE (repeat for several; from Python, a "
                  "dict); `strseq models tag` changes them later.", flags=("--tag",)),
    "force": Param(False, "Train and publish even when production (or the newest version) was trained on the "
                   "same pairs, known values, parameters and base model (by default such a retrain publishes "
                   "nothing).", flags=("--force",)),
}


# -- strseq clean / the strseq-clean flow (CleanParams) ------------------------------------------
CLEAN = {
    "db": Param(..., "SQLAlchemy URL of the database: sqlite:///file.db, postgresql+psycopg://user@host/db, "
                "or env:VAR / prefect-secret:BLOCK holding it (its JSON form in Prefect hides the password).",
                env="STRSEQ_DB"),
    "table": Param(..., "Table to clean."),
    "key": Param(..., "Integer or text column identifying a row (primary key or unique)."),
    "column": Param(..., "Text column to normalize."),
    "model": Param(..., "Model folder, or REGISTRY/NAME@production."),
    "output_column": Param(None, "Write predictions here (default: COLUMN_clean)."),
    "in_place": Param(False, "Overwrite COLUMN itself (old values stay in strseq_audit).", flags=("--in-place",)),
    "create_output_column": Param(False, "Add the output column (TEXT) if missing.",
                                  flags=("--create-output-column",)),
    "threshold": THRESHOLD,
    "batch_size": Param(1000, "Rows per read/predict/write transaction.", ge=1, le=100_000),
    "dry_run": Param(False, "Write nothing; report what would change.", flags=("--dry-run",)),
    "ask_in_ui": Param(0, "After the run, pause it and ask a person in Prefect's UI about up to this many of its "
                       "questions, most useful first (a form: approve, reject or the right value per row); 0: no "
                       "pause.", ge=0, le=100),
    "ask_timeout": Param(3600, "Seconds the paused run waits for the answers (unanswered questions stay in "
                         "strseq_review).", gt=0),
    "db_schema": Param(None, "Database schema of the table (PostgreSQL).", flags=("--schema",)),
    "threads": Param(None, "onnxruntime threads per partition (default 1: use --partitions for more cores).",
                     ge=1),
    "precision": RUN_PRECISION,
    "no_programs": NO_PROGRAMS,
    "partitions": Param(1, "Split the key range into this many partitions cleaned side by side (threads, "
                        "or Dask workers with --dask-address).", ge=1, le=1024),
    "dask_address": Param(None, "Run the partitions on this Dask scheduler (tcp://host:8786), or `local` "
                          "for a temporary cluster of one worker process per partition."),
    "min_non_null": Param(0.5, "Validation: at least this share of values must be non-NULL.", ge=0, le=1),
    "min_within_length": Param(0.99, "Validation: at least this share must fit the model's length limit "
                               "(longer ones go to review).", ge=0, le=1),
}


def cli_name(specs: dict[str, Param], field: str) -> str:
    """The option a user typed for a record's field (``db_schema``: ``--schema``)."""
    spec = specs.get(field) or GATES.get(field)
    return spec.flag(field) if spec else "--" + field.replace("_", "-")
