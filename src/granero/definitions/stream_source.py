"""Stream sources: where a feature view's rows arrive continuously (``granero stream`` reads them).

A feature view keeps its batch ``source`` (what ``materialize`` reads) and may declare a
``stream_source``: a Kafka topic (``KafkaSource``) or a Delta table read as a stream
(``FileSource(format="delta")``). Streamed rows go through the view's filter, transformations and
casts like batch rows, and land in the same offline table and online store.

Message formats: ``json`` (``schema`` is a Spark DDL struct, e.g. ``"driver_id BIGINT, ts
TIMESTAMP, conv_rate DOUBLE"``) and ``avro`` (``schema`` is the Avro schema's JSON, decoded with
Spark's ``from_avro``). ``protobuf`` is refused here: Spark's protobuf connector
(spark-protobuf_2.13 4.0.0) is not in the Maven repository Granero fetches from.
"""

from __future__ import annotations

import json
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, field_validator, model_validator
from pydantic import Field as PydanticField

from granero.definitions.base import Definition
from granero.definitions.source import FileSource

KAFKA_OPTION_PREFIX = "kafka."
"""Options passed to the Kafka consumer itself (Spark's convention)."""

_OWNED_OPTIONS = ("subscribe", "subscribePattern", "assign", "kafka.bootstrap.servers")
"""Reader options the source's own fields set; an ``options`` entry may not override them."""


class KafkaSource(Definition):
    """A Kafka topic whose messages' values are one row each."""

    model_config = ConfigDict(populate_by_name=True)
    kind: ClassVar[str] = "source"

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str
    topic: str
    format: Literal["json", "avro", "protobuf"] = "json"
    value_schema: str = PydanticField(alias="schema")
    """The message value's schema: Spark DDL for json, the Avro schema JSON for avro."""
    timestamp_field: str
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = {}
    """Renames applied after parsing: message field -> name used by the view."""
    options: dict[str, str] = {}
    """Spark Kafka reader options, e.g. ``{"startingOffsets": "earliest"}`` or
    ``{"kafka.security.protocol": "SSL"}``."""

    @field_validator("bootstrap_servers", "topic", "value_schema", "timestamp_field")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("options")
    @classmethod
    def _no_owned_options(cls, value: dict[str, str]) -> dict[str, str]:
        owned = sorted(set(value) & set(_OWNED_OPTIONS))
        if owned:
            raise ValueError(f"{owned} are set by bootstrap_servers and topic; remove them from options")
        return value

    @model_validator(mode="after")
    def _format_supported(self) -> KafkaSource:
        if self.format == "protobuf":
            raise ValueError(
                "format: protobuf is not supported: Spark's protobuf connector "
                "(org.apache.spark:spark-protobuf_2.13:4.0.0) is not available from the Maven "
                "repository Granero uses; send json or avro"
            )
        if self.format == "avro":
            _check_avro_schema(self.value_schema)
        return self


def _check_avro_schema(text: str) -> None:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"schema: an avro schema must be JSON ({error})") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError('schema: an avro schema must be a record ({"type": "record", ...})')


def _delta_only(source: FileSource) -> FileSource:
    if source.format != "delta":
        raise ValueError(
            f"stream_source: a file source streams only as a Delta table, got format {source.format!r}"
        )
    return source


StreamSource = Annotated[KafkaSource | FileSource, PydanticField(discriminator="type")]
"""What a view's ``stream_source`` may be: a Kafka topic or a Delta table."""


def check_stream_source(source: KafkaSource | FileSource | None) -> KafkaSource | FileSource | None:
    """A view's stream source, refused when it is a file source that is not Delta."""
    if isinstance(source, FileSource):
        return _delta_only(source)
    return source
