"""``granero stream`` against a real Kafka broker, as a real subprocess: what is produced is
served online and lands in the offline table (and training) exactly once, malformed messages
become dead letters without stopping the query, and a SIGKILL mid-stream followed by a restart
(as two processes: ``--queries online``, then ``--queries durable``) loses nothing and duplicates
nothing.

Events are random (seeded): drivers, values and event times drawn at random and produced out of
order, so the online value of each driver is checked against a simple oracle (the row with the
latest event time wins, whatever arrived last).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from granero.feature_store import FeatureStore
from granero.freshness import read_stream_progress
from granero.offline.landing import landing_location, read_landed_arrow
from tests.conftest import scaled
from tests.streaming.broker import produce
from tests.streaming.conftest import StreamRepo, append_trips

pytestmark = pytest.mark.timeout(900)

NOW = datetime.now(UTC).replace(microsecond=0)
MALFORMED = [
    b"not json at all",
    b'{"driver_id": 1, "ts": "2026-01-01T00:00:00Z", "rate": "fast"}',  # not the schema's type
    b'{"ts": "2026-01-01T00:00:00Z", "rate": 0.5, "trips": 1}',  # no join key
    b'{"driver_id": 3, "rate": 0.5, "trips": 1}',  # no event time
    b'{"driver_id": 4, "ts": "2026-01-01T00:00:00Z", "rate": 0.5, "trips": 3000000000}',  # int32 overflow
]


def random_events(rng: random.Random, count: int, start_index: int) -> list[dict]:
    """Events with distinct (driver, time): 20 drivers, times within the last hour, any order."""
    events = []
    for index in range(start_index, start_index + count):
        events.append({
            "driver_id": rng.randrange(20),
            "ts": (NOW - timedelta(seconds=3600 - index)).isoformat(),  # distinct per index
            "rate": rng.random(), "trips": rng.randrange(1000), "note": f"e{index}",
        })
    rng.shuffle(events)
    return events


def encoded(events: list[dict]) -> list[bytes]:
    return [json.dumps(event).encode() for event in events]


def latest_per_driver(events: list[dict]) -> dict[int, dict]:
    """The oracle: per driver, the event with the latest event time."""
    latest: dict[int, dict] = {}
    for event in events:
        known = latest.get(event["driver_id"])
        if known is None or event["ts"] > known["ts"]:
            latest[event["driver_id"]] = event
    return latest


def start_stream(repo: Path, log: Path, *extra: str) -> subprocess.Popen:
    """``granero stream`` in a process group of its own (its JVM is a child: killed together)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "granero.cli.main", "stream", "--repo", str(repo), *extra],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_until(condition: Callable[[], bool], seconds: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + scaled(seconds)
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"granero stream exited {process.returncode}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {scaled(seconds):.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def run_available_now(repo: Path, log: Path, *extra: str) -> dict:
    """``granero stream --available-now --json`` to its end; its JSON summary."""
    process = start_stream(repo, log, "--available-now", "--json", *extra)
    try:
        process.wait(timeout=scaled(600))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert process.returncode == 0, text[-4000:]
    return json.loads(text)


def offline_rows(store: FeatureStore):
    from deltalake import DeltaTable

    return DeltaTable(f"{store.config.offline_store.path}/driver_stats").to_pyarrow_table()


def dead_letters(store: FeatureStore):
    folder = Path(store.config.streaming.dead_letter_location) / "driver_stats"
    return pq.read_table(folder) if folder.is_dir() else None


def test_killed_and_restarted_stream_serves_and_stores_every_event_once(
    stream_repo: StreamRepo, kafka, tmp_path: Path
):
    rng = random.Random(14)
    first, second, third = (random_events(rng, 300, 0), random_events(rng, 300, 300),
                            random_events(rng, 300, 600))
    produce(kafka.bootstrap_servers, stream_repo.topic, [*encoded(first), *MALFORMED], scaled(30))
    log = tmp_path / "stream.log"
    store = FeatureStore(stream_repo.path)
    process = start_stream(stream_repo.path, log)
    try:
        progress = lambda: read_stream_progress(store.online_store).get("driver_stats")  # noqa: E731
        wait_until(lambda: progress() is not None, 300, process, log)
        produce(kafka.bootstrap_servers, stream_repo.topic, encoded(second), scaled(30))
        seen = progress().batch_id
        wait_until(lambda: progress().batch_id > seen, 120, process, log)  # the query is mid-stream
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=scaled(30))
    produce(kafka.bootstrap_servers, stream_repo.topic, encoded(third), scaled(30))
    append_trips(stream_repo.trip_source, [(2, NOW, 20), (1, NOW - timedelta(hours=2), 9), (1, NOW, 11)])

    # restarted split (``--queries``): the online queries' process, then the durable queries'
    online = run_available_now(stream_repo.path, tmp_path / "restart_online.log", "--queries", "online")
    assert online["driver_stats"]["online_rows"] >= len(third) and online["driver_stats"]["rows"] == 0
    assert offline_rows(store).num_rows < len(first) + len(second) + len(third)  # not the online process's job
    durable = run_available_now(stream_repo.path, tmp_path / "restart_durable.log", "--queries", "durable")
    assert durable["driver_stats"]["rows"] >= len(third)  # a replayed batch counts again here
    assert durable["driver_stats"]["online_batches"] == 0

    events = [*first, *second, *third]
    table = offline_rows(store)
    assert table.num_rows == len(events)  # nothing lost, nothing twice
    assert sorted(table["note"].to_pylist()) == sorted(e["note"] for e in events)
    landed = read_landed_arrow(landing_location(store.config.offline_store.path), "driver_stats", None)
    assert sorted(landed["note"].to_pylist()) == sorted(e["note"] for e in events)
    letters = dead_letters(store)
    assert letters is not None
    assert sorted(letters["value"].to_pylist()) == sorted(MALFORMED)
    assert all(letters["error"].to_pylist())

    latest = latest_per_driver(events)
    result = store.get_online_features([{"driver_id": d} for d in sorted(latest)],
                                       features=["driver_stats:conv_rate", "driver_stats:note"])
    served = result.to_dict()
    assert served["driver_stats__note"] == [latest[d]["note"] for d in sorted(latest)]
    assert served["driver_stats__conv_rate"] == pytest.approx([latest[d]["rate"] for d in sorted(latest)])
    assert pc.max(table["event_timestamp"]).as_py() == max(datetime.fromisoformat(e["ts"]) for e in events)
    check_delta_stream(store)
    store.close()


def check_delta_stream(store: FeatureStore) -> None:
    """The Delta-sourced view: every source row offline once, the latest per driver served
    (the late row of driver 1, two hours older, did not overwrite its newer value)."""
    from deltalake import DeltaTable

    table = DeltaTable(f"{store.config.offline_store.path}/trip_totals").to_pyarrow_table()
    assert sorted(table["total"].to_pylist()) == [9, 10, 11, 20]
    served = store.get_online_features([{"driver_id": 1}, {"driver_id": 2}], features=["trip_totals:total"])
    assert served.to_dict()["trip_totals__total"] == [11, 20]


def served_notes(store: FeatureStore, drivers: list[int]) -> list[str | None]:
    result = store.get_online_features([{"driver_id": d} for d in drivers], features=["driver_stats:note"])
    return result.to_dict()["driver_stats__note"]


def offline_notes(store: FeatureStore) -> list[str]:
    from deltalake.exceptions import TableNotFoundError

    try:
        return sorted(offline_rows(store)["note"].to_pylist())
    except TableNotFoundError:
        return []


def appends_held(store: FeatureStore, view: str) -> contextlib.AbstractContextManager[None]:
    """The view's offline-append lock (``offline.landed_append.held``) held by this process: the
    stream's appends of landed rows wait until it is released."""
    from granero.offline.landed_append import held

    return held(landing_location(store.config.offline_store.path), view)


def test_online_values_do_not_wait_for_the_offline_writes(stream_repo: StreamRepo, kafka, tmp_path: Path):
    """While the offline appends are stuck (their lock held), two rounds of events are each
    served online; released, both rounds reach the offline table, each event once. An online
    path that waited on the offline write would serve the first round, never the second."""
    rng = random.Random(1414)
    rounds = [random_events(rng, 200, 0), random_events(rng, 200, 200)]
    store = FeatureStore(stream_repo.path)
    log = tmp_path / "stream.log"
    with appends_held(store, "driver_stats"):
        process = start_stream(stream_repo.path, log)
        try:
            for index, events in enumerate(rounds):
                produce(kafka.bootstrap_servers, stream_repo.topic, encoded(events), scaled(30))
                latest = latest_per_driver([e for r in rounds[:index + 1] for e in r])
                drivers = sorted(latest)
                expected = [latest[d]["note"] for d in drivers]
                try:
                    wait_until(lambda: served_notes(store, drivers) == expected, 300, process, log)  # noqa: B023
                except AssertionError as error:
                    raise AssertionError(f"round {index + 1} of {len(rounds)} not served online: {error}") from None
            assert offline_notes(store) == []  # the appends are still waiting on the lock
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    try:
        every = sorted(e["note"] for r in rounds for e in r)
        wait_until(lambda: offline_notes(store) == every, 300, process, log)
        stopped_by_sigterm(process, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=scaled(30))
        store.close()


def stopped_by_sigterm(process: subprocess.Popen, log: Path) -> None:
    """SIGTERM (what Kubernetes sends a pod) stops the queries and the job exits 0, with no
    error from the stop itself (it once called the JVM from the signal handler: py4j refused
    the reentrant call and the job reported a failed query)."""
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=scaled(180))
    text = log.read_text()
    assert code == 0, text[-4000:]
    assert "reentrant call" not in text and "a stream query failed" not in text, text[-4000:]
