"""Batch sources: where a feature view's raw rows come from."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field as PydanticField

from granero.definitions.base import Definition


class _BatchSource(Definition):
    kind: ClassVar[str] = "source"

    timestamp_field: str
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = {}
    """Renames applied on read: source column -> name used by the view."""


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
