"""From a stream source to rows the view's pipeline reads, with what cannot be read set aside.

``stream_frame`` is the streaming DataFrame of a view's stream source: for Kafka, the raw records
(``value`` bytes with ``topic``, ``partition``, ``offset``); for Delta, the table's new rows.
``parsed`` turns one micro-batch of Kafka records into the message's fields (after
``field_mapping``) beside the record's coordinates and an ``ERROR`` column, non-null where the
message could not be parsed (not JSON, not the schema, not Avro). Parsing never fails a batch:
a malformed message becomes a dead letter.
"""

from __future__ import annotations

import functools
import json
import operator
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, FileSource, KafkaSource
from granero.errors import ConfigError, MaterializationError
from granero.offline.spark_errors import spark_errors

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

ERROR = "__granero_error"
CORRUPT = "__granero_corrupt"
RECORD_COLUMNS = ("value", "topic", "partition", "offset")
"""The Kafka record's own columns kept beside the parsed fields (a dead letter's coordinates)."""
FETCH_MAX_WAIT_MS = "10"
"""How long a consumer's fetch waits for more data (Kafka's default: 500 ms). A micro-batch reads
a fixed offset range, so waiting past its end only delays the batch: with the default, every
batch took at least half a second more (measured: 4,000 messages read in 0.9 s, 0.3 s with 10 ms).
A source's own ``options`` may set it."""


def stream_frame(spark: SparkSession, view: FeatureView, options: dict[str, str]) -> DataFrame:
    """The view's stream source as a streaming DataFrame (nothing runs until a query starts)."""
    source = view.stream_source
    if source is None:
        raise ConfigError(f"feature view {view.name!r} has no stream_source: `granero stream` cannot run it")
    with spark_errors(MaterializationError, f"feature view {view.name!r}: opening {describe(source)}"):
        if isinstance(source, FileSource):
            return mapped(spark.readStream.format("delta").options(**source.options).load(source.path), source)
        reader = spark.readStream.format("kafka").option("kafka.bootstrap.servers", source.bootstrap_servers)
        reader = reader.option("subscribe", source.topic).option("startingOffsets", "earliest")
        reader = reader.option("kafka.fetch.max.wait.ms", FETCH_MAX_WAIT_MS)
        return reader.option("failOnDataLoss", "true").options(**options, **source.options).load()


def describe(source: KafkaSource | FileSource) -> str:
    if isinstance(source, FileSource):
        return f"Delta stream source {source.path}"
    return f"Kafka topic {source.topic!r} at {source.bootstrap_servers} ({source.format})"


def mapped(frame: DataFrame, source: KafkaSource | FileSource) -> DataFrame:
    """``field_mapping`` applied: message field -> the view's name."""
    return frame.withColumnsRenamed(source.field_mapping) if source.field_mapping else frame


def parsed(records: DataFrame, source: KafkaSource) -> DataFrame:
    """Each record's message fields (mapped), its coordinates, and ERROR (null when parsed)."""
    from pyspark.sql import functions as F

    message, error = _decoded(source)
    fields = records.select(*RECORD_COLUMNS, message.alias("m"))
    fields = fields.select(*RECORD_COLUMNS, "m.*", error.alias(ERROR))
    return mapped(fields.drop(CORRUPT) if CORRUPT in fields.columns else fields, source).withColumn(
        ERROR, F.when(F.col("value").isNull(), F.lit("message has no value")).otherwise(F.col(ERROR)))


def _decoded(source: KafkaSource) -> tuple[Column, Column]:
    """The decoded message (a struct) and the error column that reads it (after selection)."""
    from pyspark.sql import functions as F

    if source.format == "avro":
        from pyspark.sql.avro.functions import from_avro

        message = from_avro(F.col("value"), source.value_schema, {"mode": "PERMISSIVE"})
        # PERMISSIVE gives an unreadable record as a struct of nulls, not a null struct
        unread = [F.col(f"m.`{field['name']}`").isNull() for field in json.loads(source.value_schema).get("fields", [])]
        failed = functools.reduce(operator.and_, unread, F.lit(True))  # a null struct too
        return message, F.when(failed, F.lit("not an Avro record of the source's schema (or every field null)"))
    schema = f"{source.value_schema}, `{CORRUPT}` STRING"
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    message = F.from_json(F.col("value").cast("string"), schema, options)
    failed = F.col(f"m.`{CORRUPT}`").isNotNull() | F.col("m").isNull()
    return message, F.when(failed, F.lit("malformed JSON, or not the source's schema"))


def check_schema(spark: SparkSession, view: FeatureView) -> None:
    """Refuse, before any query starts, a Kafka source whose schema Spark cannot read."""
    source = view.stream_source
    if not isinstance(source, KafkaSource):
        return
    empty = spark.createDataFrame([], "value BINARY, topic STRING, partition INT, offset BIGINT")
    with spark_errors(ConfigError, f"feature view {view.name!r} stream_source field 'schema'"):
        parsed(empty, source).schema  # noqa: B018 -- analysis happens on schema access
