"""The OfflineStore ``append`` contract, on every backend: a (writer, sequence) pair adds its rows
once, whatever is replayed or killed midway, and appended rows live with windowed writes."""

from __future__ import annotations

import pytest

from granero.errors import MaterializationError
from tests.offline.test_tables import PARTITIONS, content, expected, frame, store, window  # noqa: F401 (fixture)

pytestmark = pytest.mark.spark


def test_a_replayed_sequence_adds_nothing(spark, store):  # noqa: F811 (the imported fixture)
    batches = [[(1, 1, 1.0), (2, 2, 2.0)], [(1, 30, 3.0)], [(3, 3, 4.0)]]
    for sequence, rows in enumerate(batches):
        store.append("view", frame(spark, rows), "stream-a", sequence, PARTITIONS)
        store.append("view", frame(spark, rows), "stream-a", sequence, PARTITIONS)  # a replay
    store.append("view", frame(spark, batches[1]), "stream-a", 1, PARTITIONS)  # an older one again
    assert content(store) == expected(spark, [row for rows in batches for row in rows])
    store.append("view", frame(spark, batches[0]), "stream-b", 0, PARTITIONS)  # another writer's
    assert len(content(store)) == 6


def test_a_failed_append_adds_nothing_and_its_retry_adds_once(spark, store):  # noqa: F811
    failing = frame(spark, [(1, 1, 1.0), (9, 2, 9.0)]).selectExpr(
        "k", "event_timestamp", "created_timestamp",
        "CASE WHEN k = 9 THEN raise_error('injected failure') ELSE v END AS v", "event_date")
    with pytest.raises(MaterializationError, match="injected failure"):
        store.append("view", failing.repartition(2, "k"), "stream", 0, PARTITIONS)
    rows = [(1, 1, 1.0), (9, 2, 9.0)]
    store.append("view", frame(spark, rows), "stream", 0, PARTITIONS)
    store.append("view", frame(spark, rows), "stream", 0, PARTITIONS)
    assert content(store) == expected(spark, rows)


def test_appended_rows_are_replaced_by_a_window_write_like_any_row(spark, store):  # noqa: F811
    store.append("view", frame(spark, [(1, 1, 1.0), (1, 30, 2.0)]), "stream", 0, PARTITIONS)
    store.write_window("view", frame(spark, [(2, 2, 5.0)]), window(0, 24), PARTITIONS)
    assert content(store) == expected(spark, [(2, 2, 5.0), (1, 30, 2.0)])


def test_a_parquet_append_killed_before_its_record_is_replaced_by_its_retry(spark, tmp_path):
    from granero.offline.landing import batch_key
    from granero.offline.parquet import ParquetConfig, ParquetStore

    parquet = ParquetStore(ParquetConfig(path=str(tmp_path / "offline")), spark)
    rows = [(1, 1, 1.0), (2, 30, 2.0)]
    parquet.append("view", frame(spark, rows), "stream", 0, PARTITIONS)
    (tmp_path / "offline" / "view" / "_appended" / batch_key("stream/0")).unlink()  # killed there
    parquet.append("view", frame(spark, rows), "stream", 0, PARTITIONS)
    assert content(parquet) == expected(spark, rows)
