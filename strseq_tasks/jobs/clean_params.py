"""The cleaning job's parameter record (``CleanParams``) and what can be checked before a run starts (``preflight``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from strseq_tasks.data.db import (
    create_engine,
    missing_output_column,
    reflect_table,
)
from strseq_tasks.data.urls import MaskedUrl
from strseq_tasks.params import CLEAN


class CleanParams(BaseModel):
    """One cleaning job (the ``strseq-clean`` flow's parameters); safe defaults: an output
    column, a confidence gate, nothing written in place unless asked. Names, defaults, bounds and
    help are ``params.CLEAN``'s, shared with ``strseq clean``'s options."""

    model_config = ConfigDict(extra="forbid")
    db: MaskedUrl = CLEAN["db"].field()
    table: str = CLEAN["table"].field()
    key: str = CLEAN["key"].field()
    column: str = CLEAN["column"].field()
    model: MaskedUrl = CLEAN["model"].field()
    output_column: str | None = CLEAN["output_column"].field()
    in_place: bool = CLEAN["in_place"].field()
    create_output_column: bool = CLEAN["create_output_column"].field()
    threshold: float = CLEAN["threshold"].field()
    batch_size: int = CLEAN["batch_size"].field()
    dry_run: bool = CLEAN["dry_run"].field()
    ask_in_ui: int = CLEAN["ask_in_ui"].field()
    ask_timeout: int = CLEAN["ask_timeout"].field()
    db_schema: str | None = CLEAN["db_schema"].field()
    threads: int | None = CLEAN["threads"].field()
    precision: Literal["auto", "fp32", "int8"] = CLEAN["precision"].field()
    no_programs: bool = CLEAN["no_programs"].field()
    partitions: int = CLEAN["partitions"].field()
    dask_address: str | None = CLEAN["dask_address"].field()
    min_non_null: float = CLEAN["min_non_null"].field()
    min_within_length: float = CLEAN["min_within_length"].field()

    @model_validator(mode="after")
    def _mode(self) -> CleanParams:
        if self.in_place and self.output_column:
            raise ValueError("give an output column or in_place, not both")
        return self

    def target_column(self) -> str | None:
        """The output column's name, or None when cleaning in place."""
        return None if self.in_place else (self.output_column or f"{self.column}_clean")


def preflight(params: CleanParams) -> None:
    """What can be checked before a run starts, writing nothing (the CLI calls it before Prefect
    starts, so a mistake is one clear line and no failed flow run): the model resolves (registry,
    name, alias or version), the database answers, and the table, its key and the columns can be
    cleaned as asked."""
    from strseq_tasks.serve.bundle import read_manifest
    from strseq_tasks.serve.loading import resolve_model

    read_manifest(resolve_model(params.model)[0])  # a folder that is not a model, or damaged
    engine = create_engine(params.db)
    try:
        user = reflect_table(engine, params.table, params.key, params.column, params.target_column(),
                             params.create_output_column, params.db_schema, dry_run=True)
    finally:
        engine.dispose()
    if user.target_missing and not params.create_output_column and not params.dry_run:
        raise missing_output_column(params.table, params.target_column())
