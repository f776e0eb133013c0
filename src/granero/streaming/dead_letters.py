"""Dead letters: the raw messages of a micro-batch that cannot become table rows, kept to read.

Layout: ``<dead_letter_location>/<view>/batch=<batch key>/part-00000.parquet``, one file per
micro-batch with rows to set aside: the record (``value``, ``topic``, ``partition``, ``offset``),
``error`` (why) and ``batch_id``. A replay of the batch writes the same file again (same batch
key, same records), so a batch's dead letters are kept once. Written from Arrow in process on a
local file system (atomic and durable, ``atomic_files``); elsewhere by Spark, which holds the
object store's credentials.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from granero.atomic_files import atomic_write
from granero.offline.landing import is_local
from granero.streaming.parse import ERROR, RECORD_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

FILE_NAME = "part-00000.parquet"


def letters_table(dead: pa.Table, batch_id: int) -> pa.Table:
    """The dead letters' columns: the records' own, ``error`` (from ``ERROR``) and ``batch_id``."""
    import pyarrow as pa

    columns = {name: dead[name] for name in RECORD_COLUMNS}
    return pa.table({**columns, "error": dead[ERROR], "batch_id": pa.array([batch_id] * dead.num_rows, pa.int64())})


def write_dead_letters(spark: SparkSession, location: str, view: str, batch_key: str, letters: pa.Table) -> None:
    """Keep ``letters`` as the batch's dead letters (nothing when there are none)."""
    if letters.num_rows == 0:
        return
    folder = f"{location.rstrip('/')}/{view}/batch={batch_key}"
    if is_local(location):
        atomic_write(Path(folder.removeprefix("file://")) / FILE_NAME, _parquet_bytes(letters))
        return
    from granero.offline.spark_errors import arrow_frame

    context = f"writing the dead letters of view {view!r}"
    arrow_frame(spark, letters, None, context).coalesce(1).write.mode("overwrite").parquet(folder)


def _parquet_bytes(letters: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(letters, buffer)
    return buffer.getvalue()
