"""Landed rows (granero.offline.landing): atomic, idempotent by batch id, resumable by marker,
read back exactly (in process against a plain filter, through Spark the same rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import ConfigError, InvalidRequest
from granero.offline import landing
from granero.registry import Interval

T0 = datetime(2026, 1, 7, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def rows(drivers: list[int], minutes: list[int], rates: list[float | None] | None = None) -> pa.Table:
    columns = {
        "driver_id": pa.array(drivers, pa.int64()),
        "event_timestamp": pa.array([T0 + timedelta(minutes=m) for m in minutes], TS),
        "created_timestamp": pa.nulls(len(drivers), TS),
        "conv_rate": pa.array(rates or [0.5] * len(drivers), pa.float64()),
    }
    return pa.table(columns)


def window(start_minute: int, end_minute: int) -> Interval:
    return Interval(start=T0 + timedelta(minutes=start_minute), end=T0 + timedelta(minutes=end_minute))


def instant(minute: int) -> Interval:
    """The one-microsecond window of a single event time."""
    moment = T0 + timedelta(minutes=minute)
    return Interval(start=moment, end=moment + timedelta(microseconds=1))


def test_rows_read_back_as_written(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    written = rows([1, 2], [0, 5], [0.25, 0.75])
    landing.write_landed(where, "stats", written, "b1")
    assert landing.read_landed_arrow(where, "stats", None).equals(written)


def test_same_batch_id_lands_once(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    landing.write_landed(where, "stats", rows([1], [0]), "b1")
    landing.write_landed(where, "stats", rows([1], [0]), "b1")
    landing.write_landed(where, "stats", rows([9], [3]), "b1")  # an id is the write, not the rows
    assert landing.read_landed_arrow(where, "stats", None)["driver_id"].to_pylist() == [1]
    assert len(list((tmp_path / "landing" / "stats").glob("*.parquet"))) == 1
    assert landing.landed_since(where, "stats", None)[1] == "1"  # one log line


def test_a_write_killed_between_its_log_line_and_its_data_lands_on_retry(tmp_path: Path) -> None:
    """A key in the log without its file (and a log line a crash cut short) is not counted by
    landed_since; the retry lands the rows and is counted."""
    where = str(tmp_path / "landing")
    folder = tmp_path / "landing" / "stats"
    folder.mkdir(parents=True)
    (folder / "_landed.log").write_text(landing.batch_key("b1") + "\n" + "abc")
    assert landing.landed_since(where, "stats", None) == ([], "2")
    landing.write_landed(where, "stats", rows([4], [1]), "b1")
    assert landing.read_landed_arrow(where, "stats", None)["driver_id"].to_pylist() == [4]
    windows, marker = landing.landed_since(where, "stats", "2")
    assert windows == [instant(1)] and marker == "3"
    lines = (folder / "_landed.log").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines[1:]] == ["abc", landing.batch_key("b1")]


def test_windows_come_from_the_log_lines_and_older_lines_from_the_footers(tmp_path: Path, monkeypatch) -> None:
    """A window read opens no file outside the window: each file's event range is on its log
    line. A line written before lines held it (a key alone) is read from its file's footer."""
    where = str(tmp_path / "landing")
    for minute in (1, 5, 9):
        landing.write_landed(where, "stats", rows([minute], [minute]), f"b{minute}")
    log = tmp_path / "landing" / "stats" / "_landed.log"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0].split(" ")[0], *lines[1:]]) + "\n")  # the first, an older line
    opened: list[Path] = []
    real = landing._event_range
    monkeypatch.setattr(landing, "_event_range", lambda path: opened.append(path) or real(path))
    assert landing.read_landed_arrow(where, "stats", window(4, 10))["driver_id"].to_pylist() == [5, 9]
    assert [path.stem for path in opened] == [landing.batch_key("b1")]  # the older line's footer only
    assert landing.landed_since(where, "stats", None)[0] == [instant(1), instant(5), instant(9)]


def test_no_temporary_files_remain(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    for batch in range(3):
        landing.write_landed(where, "stats", rows([batch], [batch]), f"b{batch}")
    assert not [p for p in (tmp_path / "landing").rglob("*") if p.name.endswith(".tmp")]


def test_landed_since_resumes_from_its_marker(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    assert landing.landed_since(where, "stats", None) == ([], None)
    landing.write_landed(where, "stats", rows([1, 1], [10, 20]), "a")
    windows, marker = landing.landed_since(where, "stats", None)
    assert windows == [Interval(start=T0 + timedelta(minutes=10), end=instant(20).end)]
    assert landing.landed_since(where, "stats", marker) == ([], marker)
    landing.write_landed(where, "stats", rows([2], [15]), "b")  # inside the first: merged
    landing.write_landed(where, "stats", rows([2], [60]), "c")
    windows, newer = landing.landed_since(where, "stats", marker)
    assert windows == [instant(15), instant(60)]
    assert newer > marker
    windows, _ = landing.landed_since(where, "stats", None)
    assert windows == [Interval(start=T0 + timedelta(minutes=10), end=instant(20).end), instant(60)]


def test_files_written_before_a_feature_was_added_read_it_as_null(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    landing.write_landed(where, "stats", rows([1], [0]), "old")
    landing.write_landed(where, "stats", rows([2], [1]).append_column("trips", pa.array([7], pa.int32())), "new")
    read = landing.read_landed_arrow(where, "stats", None)
    assert read["trips"].to_pylist() == [None, 7]


def test_bad_rows_and_remote_locations_are_refused(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    with pytest.raises(InvalidRequest, match="'stats'.*event_timestamp"):
        landing.write_landed(where, "stats", rows([1], [0]).drop_columns(["event_timestamp"]), "b")
    nulls = rows([1], [0]).set_column(1, "event_timestamp", pa.nulls(1, TS))
    with pytest.raises(InvalidRequest, match="every row"):
        landing.write_landed(where, "stats", nulls, "b")
    with pytest.raises(InvalidRequest, match="batch_id"):
        landing.write_landed(where, "stats", rows([1], [0]), "")
    with pytest.raises(ConfigError, match="s3a://bucket/x"):
        landing.write_landed("s3a://bucket/x", "stats", rows([1], [0]), "b")
    assert not (tmp_path / "landing" / "stats").exists() or not list((tmp_path / "landing" / "stats").glob("*.parquet"))


def test_landing_location_is_a_sibling_of_the_tables() -> None:
    assert landing.landing_location("/data/offline/") == "/data/offline_landing"


batches = st.lists(
    st.lists(st.tuples(st.integers(0, 5), st.integers(-3000, 3000)), min_size=1, max_size=6),
    min_size=1, max_size=5,
)


@settings(max_examples=40, deadline=None)
@given(batches=batches, bounds=st.tuples(st.integers(-3000, 3000), st.integers(1, 4000)))
def test_window_reads_match_a_plain_filter(tmp_path_factory, batches, bounds) -> None:
    """Whatever lands, in any number of files, a window's read is exactly the landed rows whose
    event time is in [start, end) (file pruning by metadata loses none)."""
    where = str(tmp_path_factory.mktemp("landing"))
    for number, batch in enumerate(batches):
        landing.write_landed(where, "v", rows([d for d, _ in batch], [m for _, m in batch]), f"b{number}")
    start, length = bounds
    asked = window(start, start + length)
    expected = sorted((d, m) for batch in batches for d, m in batch if start <= m < start + length)
    read = landing.read_landed_arrow(where, "v", asked)
    got = [] if read is None else sorted(
        (d, int((t - T0).total_seconds() // 60))
        for d, t in zip(read["driver_id"].to_pylist(), read["event_timestamp"].to_pylist(), strict=True)
    )
    assert got == expected


def test_spark_reads_the_same_rows(tmp_path: Path, spark) -> None:
    where = str(tmp_path / "landing")
    landing.write_landed(where, "stats", rows([1, 2, 3], [0, 30, 90]), "a")
    landing.write_landed(where, "stats", rows([4], [45]).append_column("trips", pa.array([7], pa.int32())), "b")
    frame = landing.read_landed(spark, where, "stats", window(20, 60))
    assert sorted((r.driver_id, r.trips) for r in frame.collect()) == [(2, None), (4, 7)]
    assert landing.read_landed(spark, where, "stats", window(200, 300)) is None
    assert landing.read_landed(spark, where, "other", None) is None
