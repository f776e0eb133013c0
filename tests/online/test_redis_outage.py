"""One RedisStore shared by request threads while its real redis-server is killed (SIGKILL) and
restarted on the same port, or frozen (SIGSTOP) and resumed (SIGCONT).

The guarantees under test:

- every failed request fails with OnlineStoreUnavailable, nothing else (no AttributeError from a
  client torn down by a neighbour, no raw OSError);
- a request fails only because of its own connection: on a frozen server each request waits out
  its whole budget (``ATTEMPTS`` x the socket timeout) before it fails, so a neighbour's timeout
  never cuts it short by closing a socket it is using (a request still inside its budget when
  the server resumes therefore gets its answer);
- after Redis is back every thread succeeds again, with the same store object.

Threads wait on a condition for the outcomes each phase needs (bounded by ``WAIT``): no sleeps.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from granero.errors import OnlineStoreUnavailable
from granero.online.encoding import encode_entity_key
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import write_rows

pytestmark = pytest.mark.redis

THREADS = 6
TIMEOUT = 0.4
"""The store's socket timeout: how long one attempt waits on a frozen server."""
ATTEMPTS = 2
"""A read or write is sent at most twice (once more on a fresh connection)."""
WAIT = 60.0
"""An upper bound for each phase's outcomes to arrive, never a sleep."""
EVENT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    thread: int
    started: float
    ended: float
    error: BaseException | None


class Load:
    """Threads sending requests until stopped, thread i calling ``requests[i]``; each outcome
    is recorded with its start and end time."""

    def __init__(self, requests: list[Callable[[], object]]) -> None:
        self.requests = requests
        self.outcomes: list[Outcome] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(len(requests))]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(WAIT)

    def mark(self) -> int:
        with self.changed:
            return len(self.outcomes)

    def wait_each(self, since: int, count: int, ok: bool) -> None:
        """Until every thread has ``count`` outcomes (successes if ``ok``, else failures)
        recorded after ``since``."""

        def enough() -> bool:
            seen = [0] * len(self.threads)
            for outcome in self.outcomes[since:]:
                seen[outcome.thread] += (outcome.error is None) == ok
            return min(seen) >= count

        with self.changed:
            if not self.changed.wait_for(enough, WAIT):
                pytest.fail(f"not every thread saw {count} {'successes' if ok else 'failures'}")

    def last_errors(self) -> list[BaseException | None]:
        """Each thread's last outcome's error."""
        last = {o.thread: o.error for o in self.outcomes}
        return [last[i] for i in range(len(self.threads))]

    def _run(self, index: int) -> None:
        while not self.stopping.is_set():
            started, error = time.monotonic(), None
            try:
                self.requests[index]()
            except BaseException as caught:  # noqa: BLE001 (every kind is recorded, then judged)
                error = caught
            with self.changed:
                self.outcomes.append(Outcome(index, started, time.monotonic(), error))
                self.changed.notify_all()


def store_requests(store: RedisStore, defs) -> list[Callable[[], object]]:
    """Thread 0 writes 10 rows, the others read 20 keys each."""
    view = defs.feature_views["stats"]
    rows = [{"driver_id": d, "event_timestamp": EVENT, "trips": d} for d in range(10)]
    keys = [("stats", encode_entity_key(["int64"], [d])) for d in range(20)]

    def write() -> int:
        return write_rows(store, view, defs.join_keys(view), rows)

    return [write, *[lambda: store.read(keys)] * (THREADS - 1)]


def kill_and_restart(own_redis, load: Load) -> None:
    """SIGKILL the server once every thread succeeded, restart it on the same port once every
    thread failed, and return once every thread succeeded again."""
    load.wait_each(0, 3, ok=True)
    killed = load.mark()
    own_redis.process.kill()
    own_redis.process.wait(WAIT)
    load.wait_each(killed, 5, ok=False)
    own_redis.start()  # the same port, empty: scripts are loaded again by themselves
    load.wait_each(load.mark(), 5, ok=True)


@pytest.fixture
def shared_store(own_redis) -> Iterator[RedisStore]:
    settings = RedisSettings(own_redis.url, socket_timeout_seconds=TIMEOUT, expire_keys=False)
    store = RedisStore(settings, "outage")
    yield store
    store.close()


def foreign_errors(outcomes: list[Outcome]) -> list[BaseException]:
    return [o.error for o in outcomes if o.error and not isinstance(o.error, OnlineStoreUnavailable)]


def during(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    return [o for o in outcomes if start <= o.started and o.ended <= end]


def signal_server(own_redis, sig: signal.Signals) -> Callable[[], None]:
    own_redis.process.send_signal(sig)
    return lambda: own_redis.process.send_signal(signal.SIGCONT)


def test_killed_and_restarted_redis_fails_requests_cleanly_and_all_recover(own_redis, shared_store, defs):
    with Load(store_requests(shared_store, defs)) as load:
        kill_and_restart(own_redis, load)
    assert foreign_errors(load.outcomes) == []
    assert load.last_errors() == [None] * THREADS


def test_a_frozen_redis_never_cuts_a_neighbours_request_short(own_redis, shared_store, defs):
    with Load(store_requests(shared_store, defs)) as load:
        load.wait_each(0, 3, ok=True)
        frozen_at, frozen = time.monotonic(), load.mark()
        resume = signal_server(own_redis, signal.SIGSTOP)
        try:
            load.wait_each(frozen, 3, ok=False)
        finally:
            resumed_at = time.monotonic()
            resume()
        after = load.mark()
        load.wait_each(after, 3, ok=True)
    assert foreign_errors(load.outcomes) == []
    failed = [o for o in during(load.outcomes, frozen_at, resumed_at) if o.error]
    assert len(failed) >= 2 * THREADS
    causes = {type(o.error.__cause__).__name__ for o in failed}
    assert causes == {"TimeoutError"}, "a request failed on a socket a neighbour closed"
    short = [round(o.ended - o.started, 3) for o in failed if o.ended - o.started < ATTEMPTS * TIMEOUT]
    assert short == [], f"requests failed before their own {ATTEMPTS} x {TIMEOUT}s budget"
