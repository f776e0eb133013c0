"""The OfflineStore ``append`` contract, on every backend: a (writer, sequence) pair adds its rows
once, whatever is replayed or killed midway, and appended rows live with windowed writes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from granero.errors import MaterializationError
from tests.offline.test_tables import PARTITIONS, content, expected, frame, store, window  # noqa: F401 (fixture)

pytestmark = pytest.mark.spark


def batch(spark, rows: list[tuple[int, float, float | None]]) -> tuple[pa.Table, object]:
    """Rows as a stream's micro-batch hands them to ``append``: Arrow, and their Spark types."""
    rows_frame = frame(spark, rows)
    return rows_frame.toArrow(), rows_frame.schema


def test_a_replayed_sequence_adds_nothing(spark, store):  # noqa: F811 (the imported fixture)
    batches = [[(1, 1, 1.0), (2, 2, 2.0)], [(1, 30, 3.0)], [(3, 3, 4.0)]]
    for sequence, rows in enumerate(batches):
        store.append("view", *batch(spark, rows), "stream-a", sequence, PARTITIONS)
        store.append("view", *batch(spark, rows), "stream-a", sequence, PARTITIONS)  # a replay
    store.append("view", *batch(spark, batches[1]), "stream-a", 1, PARTITIONS)  # an older one again
    assert content(store) == expected(spark, [row for rows in batches for row in rows])
    store.append("view", *batch(spark, batches[0]), "stream-b", 0, PARTITIONS)  # another writer's
    assert len(content(store)) == 6


def test_a_failed_append_adds_nothing_and_its_retry_adds_once(spark, store):  # noqa: F811
    rows = [(1, 1, 1.0), (9, 2, 9.0)]
    good, schema = batch(spark, rows)
    store.append("view", *batch(spark, [(5, 5, 5.0)]), "other", 0, PARTITIONS)  # the table exists
    unmergeable = good.set_column(good.schema.get_field_index("v"), "v", pa.array([{"a": 1}, {"a": 2}]))
    with pytest.raises(MaterializationError, match="appending to the offline table of 'view'"):
        store.append("view", unmergeable, schema, "stream", 0, PARTITIONS)
    store.append("view", good, schema, "stream", 0, PARTITIONS)
    store.append("view", good, schema, "stream", 0, PARTITIONS)
    assert content(store) == expected(spark, [*rows, (5, 5, 5.0)])


def test_appended_rows_are_replaced_by_a_window_write_like_any_row(spark, store):  # noqa: F811
    store.append("view", *batch(spark, [(1, 1, 1.0), (1, 30, 2.0)]), "stream", 0, PARTITIONS)
    store.write_window("view", frame(spark, [(2, 2, 5.0)]), window(0, 24), PARTITIONS)
    assert content(store) == expected(spark, [(2, 2, 5.0), (1, 30, 2.0)])


def test_a_parquet_append_killed_before_its_record_is_replaced_by_its_retry(spark, tmp_path):
    from granero.offline.landing import batch_key
    from granero.offline.parquet import ParquetConfig, ParquetStore

    parquet = ParquetStore(ParquetConfig(path=str(tmp_path / "offline")), spark)
    rows = [(1, 1, 1.0), (2, 30, 2.0)]
    parquet.append("view", *batch(spark, rows), "stream", 0, PARTITIONS)
    (tmp_path / "offline" / "view" / "_appended" / batch_key("stream/0")).unlink()  # killed there
    parquet.append("view", *batch(spark, rows), "stream", 0, PARTITIONS)
    assert content(parquet) == expected(spark, rows)


def test_a_local_delta_append_commits_in_process_with_its_sequence(spark, tmp_path):
    """delta-rs, not a Spark job, commits a stream's append on a local table (the freshness
    bench's durable batches: ~0.07 s instead of ~5 s for 300k rows), with the writer's ``txn``
    that Spark's own appends also read and write."""
    from deltalake import DeltaTable

    from granero.offline.delta import DeltaConfig, DeltaStore, commit_info

    delta = DeltaStore(DeltaConfig(path=str(tmp_path / "offline")), spark)
    delta.append("view", *batch(spark, [(1, 1, 1.0)]), "stream", 4, PARTITIONS)
    delta._spark_append("view", frame(spark, [(2, 2, 2.0)]), "spark-writer", 0, PARTITIONS)
    delta.append("view", *batch(spark, [(3, 3, 3.0)]), "stream", 5, PARTITIONS)
    log = tmp_path / "offline" / "view" / "_delta_log"
    engines = [commit_info((log / f"{v:020d}.json").read_text()).get("clientVersion", "spark") for v in range(3)]
    assert engines[0].startswith("delta-rs") and engines[2].startswith("delta-rs") and engines[1] == "spark"
    table = DeltaTable(tmp_path / "offline" / "view")
    assert (table.transaction_version("stream"), table.transaction_version("spark-writer")) == (5, 0)
    assert content(delta) == expected(spark, [(1, 1, 1.0), (2, 2, 2.0), (3, 3, 3.0)])
