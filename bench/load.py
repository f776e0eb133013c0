"""The bounded load generator, run as its own process: ``python -m bench.load < spec.json``.

``concurrency`` threads, spread over ``processes`` processes, each own one connection and send
sequential requests of ``batch`` random entities until, together, they have sent ``count``
requests or ``seconds`` have passed, whichever comes first. Each thread encodes its requests
(``PAYLOADS`` random batches, cycled) before the clock starts, for every target alike: the load
generator shares the CPUs with the server under test, so what it spends per request is taken from
the server. Every answer is still decoded and checked. Five warm-up requests per connection are
not counted; the clock starts when every connection is warm. Prints one JSON summary
(p50/p95/p99, throughput, errors) on stdout.

Targets: ``grpc`` (granero serve), ``http`` (feast serve) and ``redis`` (pipelined reads of the
keys a store wrote: the physical limit of one round trip). The redis target needs only the
standard library and redis-py, so it can run on another venv's interpreter (see processes.py).
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import multiprocessing
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.stats import latency_summary

WARMUP_REQUESTS = 5
REQUEST_TIMEOUT_S = 10
PAYLOADS = 500
"""Distinct random requests each connection encodes in advance and then cycles through."""
Encode = Callable[[list[int]], object]
Send = Callable[[object], None]
Close = Callable[[], None]


class BadResponse(Exception):
    """A request completed but its answer does not have one row per entity."""


class Target(Protocol):
    def connect(self) -> tuple[Encode, Send, Close]:
        """On a new connection of its own: how to encode a batch of entity ids as a request
        (done before the clock), how to send one and check its answer, and how to close."""
        ...


def entity_keys(keys: str, ids: list[int]) -> dict[str, list[int]]:
    """Join key columns of a batch of entity indexes: the four keys of the multi-view service
    (``keys`` "trip", bench/trip.py), else one column named ``keys`` holding the ids."""
    if keys == "trip":
        from bench.trip import trip_keys

        rows = [trip_keys(i) for i in ids]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
    return {keys: ids}


@dataclass
class Selection:
    """What a request asks for: feature references or a feature service, and how many features
    the answer must carry; ``keys`` names the key mapping (see ``entity_keys``)."""

    features: list[str] | None
    service: str | None
    feature_count: int
    keys: str = "entity_id"

    @classmethod
    def of(cls, spec: dict) -> Selection:
        features = spec.get("features")
        count = spec.get("feature_count") or len(features or [])
        return cls(features, spec.get("feature_service"), count, spec.get("keys", "entity_id"))


@dataclass
class GrpcTarget:
    """Granero's gRPC server through the generated stub: no client-side batching or retries.
    ``shape`` "columns": entity ids as key columns, the answer in the COLUMNS layout (a packed
    list per feature), as Feast's HTTP API takes and answers columns. "default": what a client
    that sets nothing sends, entity rows in and the ROWS layout out."""

    address: str
    selection: Selection
    shape: str = "columns"
    timeout: float = REQUEST_TIMEOUT_S

    def connect(self) -> tuple[Encode, Send, Close]:
        import grpc

        from granero.serving.v1 import serving_pb2 as pb

        # A private subchannel pool, so each thread really has its own TCP connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channel = grpc.insecure_channel(self.address, options=options)
        # The generated stub's method, minus request serialization (encode does it up front).
        call = channel.unary_unary("/granero.serving.v1.FeatureServing/GetOnlineFeatures",
                                   request_serializer=None,
                                   response_deserializer=pb.GetOnlineFeaturesResponse.FromString)

        def send(payload: object) -> None:
            body, rows = payload  # type: ignore[misc]
            self.check(call(body, timeout=self.timeout), rows)

        return self.encoder(pb), send, channel.close

    def encoder(self, pb: Any) -> Encode:
        from granero.serving.v1.value_pb2 import Int64List, Value

        chosen = self.selection
        layout = pb.COLUMNS if self.shape == "columns" else pb.ROWS

        def encode(ids: list[int]) -> tuple[bytes, int]:
            message = pb.GetOnlineFeaturesRequest(layout=layout)
            if chosen.service:
                message.feature_service = chosen.service
            else:
                message.features.refs.extend(chosen.features or [])
            keys = entity_keys(chosen.keys, ids)
            if self.shape == "columns":
                for key, values in keys.items():
                    message.entity_columns[key].int64_list_val.CopyFrom(Int64List(val=values))
            else:
                message.entities.extend(
                    pb.EntityRow(keys={key: Value(int64_val=values[row])
                                       for key, values in keys.items()})
                    for row in range(len(ids)))
            return message.SerializeToString(), len(ids)

        return encode

    def check(self, reply: Any, rows: int) -> None:
        features = self.selection.feature_count
        if self.shape == "columns":
            answered = len(reply.views[0].statuses) if reply.views else 0
            width = len(reply.columns)
        else:
            answered = len(reply.rows)
            width = len(reply.rows[0].values) if reply.rows else features
        if answered != rows or width != features:
            raise BadResponse(f"{answered} rows x {width} features for "
                              f"{rows} entities x {features} features")


@dataclass
class HttpTarget:
    """Feast's HTTP server, JSON both ways; a keep-alive connection the server dropped (as a
    gunicorn worker restart does) is re-opened once and counted."""

    host: str
    port: int
    selection: Selection
    reconnects: itertools.count = field(default_factory=itertools.count)

    def connect(self) -> tuple[Encode, Send, Close]:
        connection = [http.client.HTTPConnection(self.host, self.port, timeout=30)]

        def post(body: bytes) -> bytes:
            headers = {"Content-Type": "application/json"}
            connection[0].request("POST", "/get-online-features", body, headers)
            response = connection[0].getresponse()
            data = response.read()
            if response.status != 200:
                raise BadResponse(f"HTTP {response.status}: {data[:200]!r}")
            return data

        def encode(ids: list[int]) -> tuple[bytes, int]:
            chosen = self.selection
            asked = ({"feature_service": chosen.service} if chosen.service
                     else {"features": chosen.features})
            body = json.dumps({**asked, "entities": entity_keys(chosen.keys, ids)})
            return body.encode(), len(ids)

        def send(payload: object) -> None:
            body, rows = payload  # type: ignore[misc]
            try:
                data = post(body)
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError):
                next(self.reconnects)
                connection[0].close()
                connection[0] = http.client.HTTPConnection(self.host, self.port, timeout=30)
                data = post(body)
            answered = len(json.loads(data)["results"][0]["values"])
            if answered != rows:
                raise BadResponse(f"{answered} rows for {rows} entities")

        return encode, send, lambda: connection[0].close()


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

    def connect(self) -> tuple[Encode, Send, Close]:
        import redis

        client = redis.Redis.from_url(self.url)

        def encode(ids: list[int]) -> list[bytes]:
            return [self.keys[i % len(self.keys)] for i in ids]

        def send(keys: object) -> None:
            pipe = client.pipeline(transaction=False)
            for key in keys:  # type: ignore[attr-defined]
                pipe.hgetall(key) if self.hashes else pipe.get(key)
            if not all(pipe.execute()):
                raise BadResponse("a key vanished")

        return encode, send, client.close


@dataclass
class Counters:
    """Shared by one process's threads: its request budget, the deadline, what was measured."""

    count: int
    seconds: float
    deadline: float = math.inf
    started: float = math.inf
    """time.monotonic() when the first thread was released (comparable across processes)."""
    issued: itertools.count = field(default_factory=itertools.count)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warmup_errors: list[str] = field(default_factory=list)

    def release(self) -> None:
        """The clock starts (every connection of every process is warm)."""
        if self.started == math.inf:
            self.started = time.monotonic()
            self.deadline = self.started + self.seconds

    def take(self) -> bool:
        """Whether one more request may start (bounded by count and by time)."""
        return next(self.issued) < self.count and time.monotonic() < self.deadline


def worker(target: Target, counters: Counters, spec: dict, seed: int, ready: Any) -> None:
    rng, ids = random.Random(seed), range(1, spec["entities"] + 1)
    encode, send, close = target.connect()
    try:
        payloads = itertools.cycle([encode(rng.sample(ids, spec["batch"]))
                                    for _ in range(PAYLOADS)])
        if _warm_up(lambda: send(next(payloads)), counters, ready):
            while counters.take():
                payload = next(payloads)
                sent = time.perf_counter()
                try:
                    send(payload)
                    counters.latencies_ms.append((time.perf_counter() - sent) * 1000)
                except Exception as error:  # counted and reported, never hidden
                    counters.errors.append(f"{type(error).__name__}: {error}"[:200])
    finally:
        close()


def _warm_up(request: Callable[[], None], counters: Counters, ready: Any) -> bool:
    """Warm this connection, then wait for all others; False when the run is off.

    A warm-up request that fails (one stuck past its deadline, say) is counted apart and the
    next one is tried: one bad request must not abort a run. Only a connection whose every
    warm-up request failed (the target does not answer) stops every worker.
    """
    failed = 0
    for _ in range(WARMUP_REQUESTS):
        try:
            request()
        except Exception as error:
            failed += 1
            counters.warmup_errors.append(f"{type(error).__name__}: {error}"[:200])
    if failed == WARMUP_REQUESTS:
        counters.errors.append(f"warm-up: every request failed: {counters.warmup_errors[-1]}")
        ready.abort()
        return False
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        return False
    counters.release()
    return True


def make_target(spec: dict) -> Target:
    if spec["target"] == "grpc":
        return GrpcTarget(spec["address"], Selection.of(spec), spec.get("shape", "columns"),
                          spec.get("request_timeout", REQUEST_TIMEOUT_S))
    if spec["target"] == "http":
        host, port = spec["address"].rsplit(":", 1)
        return HttpTarget(host, int(port), Selection.of(spec))
    return RedisTarget.scanned(spec["redis_url"], spec["entities"])


def drive(target: Target, spec: dict, seeds: list[int], count: int, ready: Any) -> dict:
    """One process's share: a thread per seed, ``count`` requests at most between them."""
    counters = Counters(count, spec["seconds"])
    threads = [threading.Thread(target=worker, args=(target, counters, spec, seed, ready),
                                daemon=True) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=spec["seconds"] + 180)
    reconnects = next(target.reconnects) if isinstance(target, HttpTarget) else 0
    return {"latencies_ms": counters.latencies_ms, "errors": counters.errors,
            "warmup_errors": counters.warmup_errors, "started": counters.started,
            "ended": time.monotonic(), "reconnects": reconnects}


def _drive_in_child(target: Target, spec: dict, seeds: list[int], count: int, ready: Any,
                    results: Any) -> None:
    results.put(drive(target, spec, seeds, count, ready))


def run(spec: dict) -> dict:
    """Drive the load described in the module docstring and summarise it.

    ``processes`` (default 2) share the ``concurrency`` connections: one process's threads
    contend for its GIL, which costs the shared CPUs more per request than two processes do.
    """
    processes = max(1, min(spec.get("processes", 2), spec["concurrency"]))
    target = make_target(spec)
    seeds = [spec["seed"] * 1000 + n for n in range(spec["concurrency"])]
    shares = [seeds[i::processes] for i in range(processes)]
    counts = [spec["count"] * len(share) // len(seeds) for share in shares]
    context = multiprocessing.get_context("spawn")  # never fork a process that loaded grpc
    ready, results = context.Barrier(len(seeds), timeout=120), context.Queue()
    children = [context.Process(target=_drive_in_child, daemon=True,
                                args=(target, spec, share, count, ready, results))
                for share, count in zip(shares[1:], counts[1:], strict=True)]
    for child in children:
        child.start()
    parts = [drive(target, spec, shares[0], counts[0], ready)]
    parts += [results.get(timeout=spec["seconds"] + 240) for _ in children]
    for child in children:
        child.join(timeout=30)
    return _summary(parts, isinstance(target, HttpTarget))


def _summary(parts: list[dict], http_target: bool) -> dict:
    latencies = [ms for part in parts for ms in part["latencies_ms"]]
    errors = [error for part in parts for error in part["errors"]]
    started = min(part["started"] for part in parts)
    elapsed = max(part["ended"] for part in parts) - started if started < math.inf else 0.0
    summary = latency_summary(latencies, elapsed, len(errors))
    summary["first_errors"] = errors[:3]
    warmup = [error for part in parts for error in part["warmup_errors"]]
    summary["warmup_errors"] = len(warmup)
    summary["first_warmup_errors"] = warmup[:3]
    if http_target:
        summary["reconnects"] = sum(part["reconnects"] for part in parts)
    return summary


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.stdin.read()))))
