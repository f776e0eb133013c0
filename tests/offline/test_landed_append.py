"""Landed rows appended to the offline table (``offline.landed_append``), the durable half of a
plain view's stream: every file landed after the appender started reaches the table once,
whatever is killed where, and a materialization of the view never adds them a second time.

The log-range rule underneath (``landing.files_of_lines``) is fuzzed without Spark: however
writes, killed writes, retries and range reads interleave, each landed file falls in exactly one
range, and a range asked again later gives the files it gave the first time.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.feature_store import FeatureStore
from granero.offline import landed_append, landing
from granero.offline.landed_append import AppendState, LandedAppender
from tests.offline.test_landing import rows
from tests.push.conftest import T0, TS, at, write_push_repo

VIEW = "driver_stats"

operations = st.lists(st.one_of(
    st.tuples(st.just("land"), st.integers(0, 7)),
    st.tuples(st.just("killed"), st.integers(0, 7)),  # its log line written, then killed
    st.tuples(st.just("read"), st.just(0)),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(steps=operations)
def test_each_landed_file_is_in_exactly_one_range_and_ranges_do_not_change(tmp_path_factory, steps) -> None:
    where = str(tmp_path_factory.mktemp("landing"))
    folder = landing.view_folder(where, "v")
    ranges: list[tuple[int, int, list[Path]]] = []

    def read_range() -> None:
        start = ranges[-1][1] if ranges else 0
        end = landing.log_length(where, "v")
        ranges.append((start, end, landing.files_of_lines(where, "v", start, end)))

    for step, batch in steps:
        if step == "land":
            landing.write_landed(where, "v", rows([batch], [batch]), f"b{batch}")
        elif step == "killed" and not (folder / f"{landing.batch_key(f'b{batch}')}.parquet").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "_landed.log", "a") as log:
                log.write(landing.batch_key(f"b{batch}") + "\n")
        else:
            read_range()
    read_range()
    read = [path for _, _, files in ranges for path in files]
    assert sorted(read) == sorted(folder.glob("*.parquet"))  # every file, none twice
    for start, end, files in ranges:
        assert landing.files_of_lines(where, "v", start, end) == files


def pushed(drivers: list[int], minute: float) -> pa.Table:
    count = len(drivers)
    return pa.table({"driver_id": pa.array(drivers, pa.int64()),
                     "event_timestamp": pa.array([at(minute)] * count, TS),
                     "conv_rate": pa.array([0.5] * count), "trips": pa.array(list(range(count)), pa.int32()),
                     "tier": pa.array(["gold"] * count)})


@pytest.fixture(params=["delta", "parquet"])
def store(request, tmp_path: Path, redis_url: str, spark) -> FeatureStore:
    with FeatureStore(write_push_repo(tmp_path / "repo", redis_url, offline=request.param)) as store:
        store.apply()
        yield store


def appender(store: FeatureStore) -> LandedAppender:
    defs = store.registered()
    location = landing.landing_location(store.config.offline_store.path)
    return LandedAppender(defs.feature_views[VIEW], defs, store.offline_store, location)


def table_trips(store: FeatureStore) -> list[tuple[int, int]]:
    table = store.offline_store.read(VIEW).select("driver_id", "trips").collect()
    return sorted((row["driver_id"], row["trips"]) for row in table)


pytestmark = pytest.mark.spark


def test_rows_landed_after_the_start_are_appended_once(store: FeatureStore) -> None:
    store.push(VIEW, pushed([7], 1), to="offline")  # before the start: materialization's to merge
    writer = appender(store)
    writer.start()
    store.push(VIEW, pushed([1, 2], 2), to="offline")
    store.push(VIEW, pushed([3], 3), to="offline")
    appender(store).start()  # another process starting later: the first start stands
    assert writer.append() == 3
    assert writer.append() == 0
    store.push(VIEW, pushed([4], 4), to="offline")
    assert writer.append() == 1
    assert table_trips(store) == [(1, 0), (2, 1), (3, 0), (4, 0)]
    assert writer.totals == {"batches": 2, "rows": 4}


@pytest.mark.parametrize("killed", ["before the commit", "after the commit"])
def test_an_append_killed_midway_is_redone_once(store: FeatureStore, monkeypatch, killed: str) -> None:
    writer = appender(store)
    writer.start()
    store.push(VIEW, pushed([1, 2], 2), to="offline")
    real_append = store.offline_store.append

    def dying_append(*args, **kwargs):
        if killed == "after the commit":
            real_append(*args, **kwargs)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store.offline_store, "append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        writer.append()
    monkeypatch.setattr(store.offline_store, "append", real_append)
    location = landing.landing_location(store.config.offline_store.path)
    assert landed_append.read_state(location, VIEW).appending is not None  # the range it was on
    store.push(VIEW, pushed([3], 3), to="offline")  # lands while the process is down
    assert writer.append() == 3  # the recorded range redone (2 rows), then what landed since (1)
    assert writer.append() == 0
    assert table_trips(store) == [(1, 0), (2, 1), (3, 0)]


def test_a_materialization_never_adds_landed_rows_a_second_time(store: FeatureStore) -> None:
    writer = appender(store)
    writer.start()
    store.push(VIEW, pushed([1, 5], 30), to="offline")  # landed, not appended yet
    store.materialize(T0, at(60), [VIEW], sync_online=False)  # unions the landed rows
    assert writer.append() == 0  # caught up before the window write: nothing left to add
    store.push(VIEW, pushed([6], 40), to="offline")
    writer.append()
    store.materialize(T0, at(60), [VIEW], sync_online=False)
    source = [(1, 3), (2, 4)]  # tests.push.conftest's source rows
    assert table_trips(store) == sorted([*source, (1, 0), (5, 1), (6, 0)])


def test_a_damaged_state_is_refused_naming_its_file(tmp_path: Path) -> None:
    where = str(tmp_path / "landing")
    landed_append.save_state(where, VIEW, AppendState(3, (3, 5)))
    assert landed_append.read_state(where, VIEW) == AppendState(3, (3, 5))
    (landing.view_folder(where, VIEW) / "_offline_append.json").write_text("{}")
    with pytest.raises(Exception, match="_offline_append.json: not an append state"):
        landed_append.read_state(where, VIEW)


def test_a_backlog_goes_in_bounded_appends_each_once(store: FeatureStore, monkeypatch) -> None:
    monkeypatch.setattr(landed_append, "LINES_PER_APPEND", 2)
    writer = appender(store)
    writer.start()
    for driver in range(5):
        store.push(VIEW, pushed([driver], driver), to="offline")
    assert writer.append() == 5
    assert writer.totals == {"batches": 3, "rows": 5}  # lines 0-1, 2-3, 4
    assert table_trips(store) == [(driver, 0) for driver in range(5)]
