"""The bounded load generator, run as its own process: ``python -m bench.load < spec.json``.

``concurrency`` threads each own one connection and send sequential requests of ``batch``
random entities until, together, they have sent ``count`` requests or ``seconds`` have passed,
whichever comes first. Five warm-up requests per connection are not counted; the clock starts
when every connection is warm. Prints one JSON summary (p50/p95/p99, throughput, errors) on
stdout.

Targets: ``grpc`` (granero serve), ``http`` (feast serve) and ``redis`` (pipelined reads of the
keys a store wrote: the physical limit of one round trip). The redis target needs only the
standard library and redis-py, so it can run on another venv's interpreter (see processes.py).
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bench.stats import latency_summary

WARMUP_REQUESTS = 5
Request = Callable[[list[int]], None]
Close = Callable[[], None]


class BadResponse(Exception):
    """A request completed but its answer does not have one row per entity."""


class Target(Protocol):
    def connect(self) -> tuple[Request, Close]:
        """A request function on a new connection of its own, and how to close it."""
        ...


@dataclass
class GrpcTarget:
    """Granero's gRPC server through the generated stub: no client-side batching or retries.
    Entity ids go as one key column and the answer comes in the COLUMNS layout (a packed list
    per feature), as Feast's HTTP API takes and answers columns."""

    address: str
    features: list[str]

    def connect(self) -> tuple[Request, Close]:
        import grpc

        from granero.serving.v1 import serving_pb2 as pb
        from granero.serving.v1 import serving_pb2_grpc, value_pb2

        # A private subchannel pool, so each thread really has its own TCP connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channel = grpc.insecure_channel(self.address, options=options)
        stub = serving_pb2_grpc.FeatureServingStub(channel)
        refs = pb.FeatureList(refs=self.features)

        def request(ids: list[int]) -> None:
            keys = {"entity_id": value_pb2.Value(int64_list_val=value_pb2.Int64List(val=ids))}
            message = pb.GetOnlineFeaturesRequest(features=refs, entity_columns=keys,
                                                  layout=pb.COLUMNS)
            reply = stub.GetOnlineFeatures(message, timeout=10)
            answered = len(reply.views[0].statuses) if reply.views else 0
            if answered != len(ids) or len(reply.columns) != len(self.features):
                raise BadResponse(f"{answered} rows x {len(reply.columns)} features for "
                                  f"{len(ids)} entities x {len(self.features)} features")

        return request, channel.close


@dataclass
class HttpTarget:
    """Feast's HTTP server, JSON both ways; a keep-alive connection the server dropped (as a
    gunicorn worker restart does) is re-opened once and counted."""

    host: str
    port: int
    features: list[str]
    reconnects: itertools.count = field(default_factory=itertools.count)

    def connect(self) -> tuple[Request, Close]:
        connection = [http.client.HTTPConnection(self.host, self.port, timeout=30)]

        def post(body: bytes) -> bytes:
            headers = {"Content-Type": "application/json"}
            connection[0].request("POST", "/get-online-features", body, headers)
            response = connection[0].getresponse()
            data = response.read()
            if response.status != 200:
                raise BadResponse(f"HTTP {response.status}: {data[:200]!r}")
            return data

        def request(ids: list[int]) -> None:
            body = json.dumps({"features": self.features, "entities": {"entity_id": ids}}).encode()
            try:
                data = post(body)
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError):
                next(self.reconnects)
                connection[0].close()
                connection[0] = http.client.HTTPConnection(self.host, self.port, timeout=30)
                data = post(body)
            answered = len(json.loads(data)["results"][0]["values"])
            if answered != len(ids):
                raise BadResponse(f"{answered} rows for {len(ids)} entities")

        return request, lambda: connection[0].close()


@dataclass
class RedisTarget:
    """One pipeline of HGETALL (hash keys) or GET (string keys) per request: one round trip."""

    url: str
    keys: list[bytes]
    hashes: bool

    @classmethod
    def scanned(cls, url: str, limit: int) -> RedisTarget:
        """Up to ``limit`` keys of the database, scanned before the clock starts."""
        import redis

        client = redis.Redis.from_url(url)
        keys = list(itertools.islice(client.scan_iter(count=1000), limit))
        if not keys:
            raise SystemExit(f"no keys in {url}: materialize first")
        hashes = client.type(keys[0]) == b"hash"
        client.close()
        return cls(url, keys, hashes)

    def connect(self) -> tuple[Request, Close]:
        import redis

        client = redis.Redis.from_url(self.url)

        def request(ids: list[int]) -> None:
            pipe = client.pipeline(transaction=False)
            for i in ids:
                key = self.keys[i % len(self.keys)]
                pipe.hgetall(key) if self.hashes else pipe.get(key)
            if not all(pipe.execute()):
                raise BadResponse("a key vanished")

        return request, client.close


@dataclass
class Counters:
    """Shared by the threads: the request budget, the deadline, and what was measured."""

    count: int
    deadline: float = 0.0
    issued: itertools.count = field(default_factory=itertools.count)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def take(self) -> bool:
        """Whether one more request may start (bounded by count and by time)."""
        return next(self.issued) < self.count and time.monotonic() < self.deadline


def worker(target: Target, counters: Counters, spec: dict, seed: int,
           ready: threading.Barrier) -> None:
    rng, ids = random.Random(seed), range(1, spec["entities"] + 1)
    request, close = target.connect()
    try:
        if _warm_up(request, lambda: rng.sample(ids, spec["batch"]), counters, ready):
            while counters.take():
                batch = rng.sample(ids, spec["batch"])
                sent = time.perf_counter()
                try:
                    request(batch)
                    counters.latencies_ms.append((time.perf_counter() - sent) * 1000)
                except Exception as error:  # counted and reported, never hidden
                    counters.errors.append(f"{type(error).__name__}: {error}"[:200])
    finally:
        close()


def _warm_up(request: Request, pick: Callable[[], list[int]], counters: Counters,
             ready: threading.Barrier) -> bool:
    """Warm this connection, then wait for the others; False when the run is off."""
    try:
        for _ in range(WARMUP_REQUESTS):
            request(pick())
        ready.wait()
        return True
    except threading.BrokenBarrierError:
        return False
    except Exception as error:  # the target does not answer: release and stop every worker
        counters.errors.append(f"warm-up: {type(error).__name__}: {error}"[:200])
        ready.abort()
        return False


def make_target(spec: dict) -> Target:
    if spec["target"] == "grpc":
        return GrpcTarget(spec["address"], spec["features"])
    if spec["target"] == "http":
        host, port = spec["address"].rsplit(":", 1)
        return HttpTarget(host, int(port), spec["features"])
    return RedisTarget.scanned(spec["redis_url"], spec["entities"])


def run(spec: dict) -> dict:
    """Drive the load described in the module docstring and summarise it."""
    target, counters, clock = make_target(spec), Counters(spec["count"]), []

    def start_clock() -> None:  # runs once, when every connection is warm, before any is released
        clock.append(time.perf_counter())
        counters.deadline = time.monotonic() + spec["seconds"]

    ready = threading.Barrier(spec["concurrency"], action=start_clock, timeout=120)
    seeds = [spec["seed"] * 1000 + n for n in range(spec["concurrency"])]
    threads = [threading.Thread(target=worker, args=(target, counters, spec, seed, ready),
                                daemon=True) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=spec["seconds"] + 180)
    elapsed = time.perf_counter() - clock[0] if clock else 0.0
    summary = latency_summary(counters.latencies_ms, elapsed, len(counters.errors))
    summary["first_errors"] = counters.errors[:3]
    if isinstance(target, HttpTarget):
        summary["reconnects"] = next(target.reconnects)
    return summary


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.stdin.read()))))
