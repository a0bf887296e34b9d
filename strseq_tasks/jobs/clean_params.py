"""The cleaning job's parameter record (``CleanParams``) and what can be checked before a run starts (``preflight``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strseq_tasks.data.db import (
    create_engine,
    missing_output_column,
    reflect_table,
)
from strseq_tasks.data.urls import MaskedUrl


class CleanParams(BaseModel):
    """One cleaning job (the ``strseq-clean`` flow's parameters); safe defaults: an output
    column, a 0.9 confidence gate, nothing written in place unless asked."""

    model_config = ConfigDict(extra="forbid")
    db: MaskedUrl = Field(description="SQLAlchemy URL of the database (sqlite:///..., postgresql+psycopg://...); "
                          "its JSON form (Prefect's flow-run parameters) hides the password")
    table: str
    key: str = Field(description="integer or text column that identifies a row (primary key or unique)")
    column: str = Field(description="text column to normalize")
    model: MaskedUrl = Field(description="model folder, or REGISTRY/NAME@production")
    output_column: str | None = Field(None, description="write here (default: COLUMN_clean) unless in_place")
    in_place: bool = Field(False, description="overwrite COLUMN itself (every old value is in the audit table)")
    create_output_column: bool = False
    threshold: float = Field(0.9, ge=0, le=1, description="apply predictions at least this confident")
    batch_size: int = Field(1000, ge=1, le=100_000)
    dry_run: bool = False
    db_schema: str | None = Field(None, description="database schema of the table (PostgreSQL)")
    threads: int | None = Field(None, ge=1, description="onnxruntime threads per partition (default 1: "
                                "use partitions for more cores)")
    precision: Literal["auto", "fp32", "int8"] = Field("auto", description="graphs to run: auto (the model's "
                                                       "int8 graphs when it has them, else fp32), fp32 or int8")
    partitions: int = Field(1, ge=1, le=1024, description="split the key range into this many partitions run "
                            "side by side (Prefect's thread pool, or Dask with dask_address)")
    dask_address: str | None = Field(None, description="run the partitions on the Dask cluster at this "
                                     "scheduler address (tcp://host:8786), or 'local' for a temporary cluster "
                                     "of one worker process per partition on this machine")
    min_non_null: float = Field(0.5, ge=0, le=1, description="validation: at least this share of values not NULL")
    min_within_length: float = Field(0.99, ge=0, le=1, description="validation: at least this share of values "
                                     "within the model's length limit (longer ones go to review)")

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
