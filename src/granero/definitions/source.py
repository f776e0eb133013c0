"""Batch sources: where a feature view's raw rows come from."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator

from granero.definitions.base import Definition
from granero.definitions.duration import Duration


class _BatchSource(Definition):
    kind: ClassVar[str] = "source"

    timestamp_field: str
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = {}
    """Renames applied on read: source column -> name used by the view."""
    allowed_lateness: Duration = timedelta(0)
    """How late (by event time) rows may still arrive in this source: an incremental run
    re-materializes ``[last end - allowed_lateness, end)``. Rows later than that are picked up
    only by a Delta source (by commit versions) or by materializing their window by hand."""

    @field_validator("allowed_lateness")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"allowed_lateness must not be negative, got {value}")
        return value


class FileSource(_BatchSource):
    """Files Spark can read: a local path or any URI (s3a://, abfss://, hdfs://, gs://)."""

    type: Literal["file"] = "file"
    path: str
    format: Literal["parquet", "delta", "csv", "json", "orc"] = "parquet"
    options: dict[str, str] = {}
    """Spark reader options, e.g. ``{"header": "true"}`` for CSV."""


class TableSource(_BatchSource):
    """A table in the Spark catalog (Hive metastore, Unity, Glue...)."""

    type: Literal["table"] = "table"
    table: str


Source = Annotated[FileSource | TableSource, PydanticField(discriminator="type")]
