"""The row count a window write reports is that write's own, on every backend: an empty window
(a re-run after the source lost its rows) reports 0, never the previous write's count."""

from __future__ import annotations

import pytest

from granero.offline.tables import build_offline_store
from tests.offline.conftest import BACKENDS, offline_config
from tests.offline.test_tables import PARTITIONS, content, frame, window


@pytest.mark.spark
@pytest.mark.parametrize("kind", BACKENDS)
def test_an_empty_window_write_reports_zero_rows(spark, tmp_path, kind):
    store = build_offline_store(offline_config(kind, tmp_path / "offline"), spark)
    assert store.write_window("view", frame(spark, [(1, 1, 1.0), (2, 2, 2.0), (3, 30, 3.0)]),
                              window(0, 48), PARTITIONS).rows_written == 3
    emptied = store.write_window("view", frame(spark, []), window(0, 24), PARTITIONS)
    assert emptied.rows_written == 0
    assert [row[0] for row in content(store)] == [3]
    if kind == "delta":  # the version reported is the commit that emptied the window
        assert emptied.table_version == store.current_version("view")
    assert store.write_window("view", frame(spark, [(4, 3, 4.0)]), window(0, 24),
                              PARTITIONS).rows_written == 1
    nothing = store.write_window("view", frame(spark, []), window(48, 72), PARTITIONS)  # none there
    assert nothing.rows_written == 0
    assert [row[0] for row in content(store)] == [3, 4]
