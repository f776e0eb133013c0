"""Freshness bench: an event produced to Kafka -> its value returned by gRPC GetOnlineFeatures.

``.venv/bin/python -m bench.freshness [--rates 1000,10000] [--seconds 60] [--warm-up 30]
[--trigger "200 milliseconds"] [--offline-trigger "30 seconds"] [--layouts one,split] [--baseline DIR]``

Per rate, on loopback: a real Kafka broker (KRaft, granero.streaming.local_broker), a private
redis-server, ``granero stream`` (Spark Structured Streaming, the view's micro-batch trigger set
by ``--trigger``) and ``granero serve`` as subprocesses. A producer process sends JSON events at
the rate, round-robin over ``--drivers`` drivers, each carrying its sequence number and its
produce time as the event time. The poller asks the server for every driver's ``seq`` in one
call, again and again, and notes when each driver's served value changes. An event counts as
served at the end of the first poll that returned its seq or a later one of its driver (a later
event replaces it by write-if-newer): latency = that time - its produce time, an upper bound by
at most one poll and its interval. Polls start every ``--poll-interval`` seconds (default 50 ms),
not back to back: a poller at full speed and the server answering it take most of this 2-core
machine and starve the stream job they measure. Events never served within ``--drain`` seconds
after the last is produced are reported as missing, not dropped from the percentiles silently.
The events of the first ``--warm-up`` seconds (default 60) at the rate are produced and served
like the others but left out of the percentiles: a stream job runs for days, and its first
minute at a new rate is not its steady freshness (at 10k/s here, the online query falls ~10 s
behind as the rate starts and takes ~40 s to catch up: p99 8.7 s over the first 10 s, 1.9 s
over the fourth, then 1.1-1.4 s; the p99 of each 10 s is printed, so a reader sees the ramp or
a spike). The measured span outlasts the offline trigger, so the appends of landed rows to the
offline table (and, in a checkout before 846c3e4, the durable query's batches) weigh on it.

``--layouts one,split`` measures the stream job as one process, then split: ``granero stream
--queries online`` and ``nice -n 10 granero stream --queries durable`` on one task slot;
``online-alone`` runs the online queries only (``LAYOUTS``).

``--baseline DIR`` (a checkout of another commit, e.g. ``git worktree add DIR HEAD~1``) measures,
per rate and in the same run on the same broker and redis-server, that checkout's stream job and
server first, then this one's: interleaved, so a busy machine weighs on both alike.

A push row does the same for ``Client.push`` (gRPC PushFeatures, one row, online and offline)
-> served, one push at a time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.processes import BENCH, ROOT
from bench.redis_server import free_port, private_redis
from granero.serving.client import DEFAULT_CONNECTIONS

VIEWS = '''
from granero import Entity, FeatureView, Field, FileSource, KafkaSource

driver = Entity(join_keys={{"driver_id": "int64"}})
driver_seq = FeatureView(
    entities=[driver],
    source=FileSource(path="data/driver_seq", timestamp_field="ts"),
    stream_source=KafkaSource(bootstrap_servers="{servers}", topic="{topic}",
                              schema="driver_id BIGINT, ts TIMESTAMP, seq BIGINT", timestamp_field="ts"),
    ttl="1d",
    features=[Field(name="seq", dtype="int64")],
)
'''


PRESENT = 0
"""``OnlineResult.statuses`` code of a value found (granero.online.lookup.COLUMN_STATUSES)."""


@dataclass
class Run:
    """One measured rate: what was produced when, and when each driver's served seq changed."""

    rate: int
    produced_at: np.ndarray  # per seq, unix seconds
    drivers: int
    changes: dict[int, list[tuple[int, float]]] = field(default_factory=dict)  # driver -> [(seq, seen at)]
    polls: int = 0
    poll_seconds: list[float] = field(default_factory=list)
    load: float = field(default_factory=lambda: os.getloadavg()[0])
    """The 1-minute load average as the run began."""

    def latencies(self, first: int = 0) -> tuple[np.ndarray, int]:
        """Per served event from the ``first`` on, seen - produced (s); and how many of those
        events were never seen."""
        seen = self.seen_at()
        served = ~np.isnan(seen[first:])
        return (seen - self.produced_at)[first:][served], int((~served).sum())

    def seen_at(self) -> np.ndarray:
        """Per event, when it was first seen served (unix s), NaN if never."""
        seen = np.full(len(self.produced_at), np.nan)
        for driver, changes in self.changes.items():
            seqs = [s for s, _ in changes]
            for seq in range(driver, len(self.produced_at), self.drivers):
                at = bisect_left(seqs, seq)
                if at < len(changes):
                    seen[seq] = changes[at][1]
        return seen


def variant_env(source: Path | None) -> dict[str, str] | None:
    """The environment running a checkout's granero (its ``src`` first on the path), or None."""
    if source is None:
        return None
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(source / "src"), str(source)])}


def write_repo(root: Path, servers: str, topic: str, redis_port: int, triggers: dict[str, str],
               env: dict[str, str] | None = None) -> Path:
    """A repo streaming ``topic``; ``triggers``: the ``streaming:`` intervals to set."""
    root.mkdir(parents=True)
    (root / "feature_store.yaml").write_text(textwrap.dedent(f"""\
        project: fresh_{uuid.uuid4().hex[:8]}
        offline_store: {{type: delta, path: data/offline}}
        online_store: {{type: redis, url: "redis://127.0.0.1:{redis_port}/0"}}
        spark:
          master: "${{GRANERO_STREAM_MASTER:-local[2]}}"
          conf: {{spark.sql.shuffle.partitions: "2", spark.default.parallelism: "2", spark.ui.enabled: "false"}}
        streaming: {json.dumps(triggers)}
        """))
    (root / "views.py").write_text(VIEWS.format(servers=servers, topic=topic))
    subprocess.run([sys.executable, "-m", "granero.cli.main", "apply", "--repo", str(root)],
                   check=True, capture_output=True, cwd=ROOT, env=env)
    return root


def produce_at_rate(servers: str, topic: str, rate: int, seconds: float, drivers: int,
                    first_seq: int, out: str) -> None:
    """A process of its own: ``rate`` events/s for ``seconds``, in 5 ms ticks; writes each
    event's produce time (unix s) to ``out`` (.npy)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": servers, "linger.ms": 2, "enable.idempotence": True})
    total = int(rate * seconds)
    produced_at = np.zeros(total)
    start, sent = time.monotonic(), 0
    while sent < total:
        due = min(total, int(rate * (time.monotonic() - start)) + 1)
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        for index in range(sent, due):
            seq = first_seq + index
            producer.produce(topic, f'{{"driver_id":{seq % drivers},"ts":"{stamp}","seq":{seq}}}'.encode())
            produced_at[index] = now
        sent = due
        producer.poll(0)
        time.sleep(max(0.0, 0.005 - (time.monotonic() - start - sent / rate)))
    left = producer.flush(60)
    if left:
        raise SystemExit(f"{left} of {total} events to {topic} were not acknowledged in 60 s")
    np.save(out, produced_at)


class Poller:
    """Asks the server for every driver's seq, notes in ``run`` when each driver's changes."""

    def __init__(self, client, run: Run, first_seq: int, interval: float = 0.0) -> None:
        self.client, self.run, self.first_seq = client, run, first_seq
        self.drivers = list(range(run.drivers))
        self.served = {d: -1 for d in self.drivers}
        self.interval, self.next_at = interval, time.monotonic()

    def poll(self) -> None:
        """One poll, started ``interval`` after the previous one started (at once if that is past)."""
        time.sleep(max(0.0, self.next_at - time.monotonic()))
        begun = time.monotonic()
        self.next_at = begun + self.interval
        result = self.client.get_online_features({"driver_id": self.drivers}, features=["driver_seq:seq"])
        seen_at = time.time()
        self.run.polls += 1
        self.run.poll_seconds.append(time.monotonic() - begun)
        for driver, seq, code in zip(self.drivers, result.values[0], result.statuses[0], strict=True):
            if code == PRESENT and seq > self.served[driver]:  # a value not found reads as 0
                self.served[driver] = seq
                self.run.changes.setdefault(driver, []).append((seq - self.first_seq, seen_at))

    def until_all_served(self, deadline: float) -> None:
        """Poll until each driver's last event (of ``run.produced_at``) is served, or ``deadline``."""
        count = self.first_seq + len(self.run.produced_at)
        last = {d: count - self.run.drivers + d for d in self.drivers}
        while time.monotonic() < deadline and any(self.served[d] < last[d] for d in self.drivers):
            self.poll()


def triggers(args: argparse.Namespace, baseline: bool) -> dict[str, str]:
    """The ``streaming:`` intervals (a baseline checkout may not know ``offline_trigger_interval``)."""
    chosen = {"trigger_interval": args.trigger}
    if args.offline_trigger and not baseline:
        chosen["offline_trigger_interval"] = args.offline_trigger
    return chosen


DURABLE_MASTER = "local[1]"
LAYOUTS = {
    "one": [[]],
    "split": [["--queries", "online"], ["--queries", "durable"]],
    "online-alone": [["--queries", "online"]],
}
"""How the stream job runs: one ``granero stream`` process, or its online queries in one process
and its durable part in another (the appends of landed rows; durable queries of aggregate views),
at lower CPU priority (``nice -n 10``) and with one task slot (``spark.master`` ``local[1]``, set
through the repo config's ``${GRANERO_STREAM_MASTER}``). ``online-alone`` runs the online
queries only (nothing reaches the offline table): the bound of the split layout with the durable
process on cores of its own, which this 2-core machine cannot measure directly."""


def processes(layout: str, grpc_port: int) -> list[tuple[list[str], dict[str, str]]]:
    """The commands of a layout, each with the environment it adds (a durable process: ``nice``
    and one task slot)."""
    granero = [sys.executable, "-m", "granero.cli.main"]
    streams = [(["nice", "-n", "10", *granero, "stream", *extra], {"GRANERO_STREAM_MASTER": DURABLE_MASTER})
               if "durable" in extra else ([*granero, "stream", *extra], {}) for extra in LAYOUTS[layout]]
    return [*streams, ([*granero, "serve", "--port", str(grpc_port), "--host", "127.0.0.1"], {})]


def measure_rate(args: argparse.Namespace, servers: str, redis_port: int, rate: int, out: Path,
                 source: Path | None = None, layout: str = "one") -> dict:
    """One rate with this checkout's stream job and server, or those of ``source``."""
    from granero.serving.client import Client
    from granero.streaming.local_broker import create_topic

    label = ("baseline" if source else "current") + ("" if layout == "one" else f", {layout}")
    topic, env = f"fresh_{rate}_{uuid.uuid4().hex[:6]}", variant_env(source)
    create_topic(servers, topic, partitions=2, timeout=60)
    name = label.replace(", ", "_")
    repo = write_repo(out / f"repo_{rate}_{name}", servers, topic, redis_port, triggers(args, bool(source)), env)
    grpc_port, log = free_port(), (out / f"processes_{rate}_{name}.log").open("ab")
    started = [subprocess.Popen([*command, "--repo", str(repo)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True, env={**(env or os.environ), **extra_env})
               for command, extra_env in processes(layout, grpc_port)]
    try:
        with Client(f"127.0.0.1:{grpc_port}", timeout=10) as client:
            warm_up(client, servers, topic, args, out, repo, durable=layout != "online-alone")
            first_seq = 10 * args.drivers  # after the warm-up's
            result = {"variant": label, **measured(client, servers, topic, rate, first_seq, args, out, name)}
            result["push"] = measure_push(client, args.pushes) if args.pushes else None
            result["stream"] = stream_progress(repo)
            return result
    finally:
        for process in started:
            os.killpg(process.pid, 15)
        for process in started:
            process.wait(timeout=120)


def stream_progress(repo: Path) -> dict | None:
    """What the stream job last reported (granero.freshness), to tell a stalled stream apart."""
    from granero.feature_store import FeatureStore
    from granero.freshness import read_stream_progress

    with FeatureStore(repo) as store:
        progress = read_stream_progress(store.online_store).get("driver_seq")
    return progress.to_json() if progress else None


def warm_up(client, servers: str, topic: str, args: argparse.Namespace, out: Path, repo: Path,
            durable: bool = True) -> None:
    """One event per driver, waited for until served and until the durable query (if ``durable``
    runs) wrote its first batch: the queries and the server are up and warm. A stream job runs for days; its start
    (the JVM's warm-up, the offline table's creation) is not what freshness measures."""
    run = Run(0, np.zeros(args.drivers), args.drivers)
    ready_deadline = time.monotonic() + args.startup
    answered = 0  # the client's channels take calls in turn: each must have connected
    while answered < 2 * DEFAULT_CONNECTIONS:
        try:
            client.get_online_features({"driver_id": [0]}, features=["driver_seq:seq"])
            answered += 1
        except Exception:  # the server is still starting, or a channel is in its reconnect backoff
            if time.monotonic() > ready_deadline:
                raise
            answered = 0
            time.sleep(0.5)
    produce_process(servers, topic, args.drivers, 1.0, args.drivers, 0, out / "warm.npy").join()
    Poller(client, run, 0).until_all_served(ready_deadline)
    if len(run.changes) < args.drivers:
        raise SystemExit(f"the stream served {len(run.changes)} of {args.drivers} warm-up events in "
                         f"{args.startup} s: see {out}/processes_*.log")
    while durable and stream_progress(repo) is None:
        if time.monotonic() > ready_deadline:
            raise SystemExit(f"the durable query wrote no batch in {args.startup} s: see {out}/processes_*.log")
        time.sleep(0.5)


def produce_process(servers: str, topic: str, rate: int, seconds: float, drivers: int,
                    first_seq: int, file: Path) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(
        target=produce_at_rate, args=(servers, topic, rate, seconds, drivers, first_seq, str(file)))
    process.start()
    return process


def measured(client, servers: str, topic: str, rate: int, first_seq: int, args: argparse.Namespace,
             out: Path, name: str) -> dict:
    """Events at ``rate`` for ``--warm-up`` + ``--seconds``; the percentiles are of the events
    produced after the warm-up. Each event's produce and served times go to
    ``seen_<rate>_<name>.npy`` in ``out``."""
    file = out / f"produced_{rate}.npy"
    producer = produce_process(servers, topic, rate, args.warm_up + args.seconds, args.drivers, first_seq, file)
    total, warm = int(rate * (args.warm_up + args.seconds)), int(rate * args.warm_up)
    run = Run(rate, np.zeros(total), args.drivers)  # produce times are read once it is done
    poller = Poller(client, run, first_seq, args.poll_interval)
    while producer.is_alive():
        poller.poll()
    producer.join()
    run.produced_at = np.load(file)
    poller.until_all_served(time.monotonic() + args.drain)
    latencies, missing = run.latencies(first=warm)
    np.save(out / f"seen_{rate}_{name}.npy", np.stack([run.produced_at, run.seen_at()]))  # for a plot over time
    measured_at = run.produced_at[warm:]
    achieved = (len(measured_at) - 1) / (measured_at[-1] - measured_at[0]) if len(measured_at) > 1 else 0.0
    return summary(rate, achieved, latencies, missing, run, len(measured_at)) | {"p99_per_10s": p99_per_span(
        measured_at, run.seen_at()[warm:], 10.0)}


def p99_per_span(produced: np.ndarray, seen: np.ndarray, span: float) -> list[float]:
    """The p99 latency of the served events produced in each ``span`` seconds, in order: a
    steady job keeps it flat; a batch that holds the online query back shows as a spike."""
    latency, start = seen - produced, produced[0] if len(produced) else 0.0
    bins = ((produced - start) // span).astype(int)
    return [round(float(np.nanpercentile(latency[bins == b], 99)), 2) for b in range(int(bins.max(initial=-1)) + 1)
            if (~np.isnan(latency[bins == b])).any()]


def summary(rate: int, achieved: float, latencies: np.ndarray, missing: int, run: Run, events: int) -> dict:
    pct = (lambda q: float(np.percentile(latencies, q))) if len(latencies) else (lambda q: float("nan"))
    return {"rate": rate, "load": run.load, "achieved_rate": round(achieved), "events": events,
            "served": len(latencies), "missing": missing, "p50_s": pct(50), "p99_s": pct(99),
            "max_s": float(latencies.max()) if len(latencies) else float("nan"),
            "polls": run.polls, "poll_p50_ms": 1000 * float(np.median(run.poll_seconds or [0]))}


def measure_push(client, pushes: int) -> dict:
    """``pushes`` one-row pushes (driver -1), each polled until served, after one untimed
    warm-up push (the server's first push opens its offline writer); push -> served seconds."""
    latencies = []
    for seq in range(-1, pushes):
        begun = time.time()
        client.push("driver_seq", [{"driver_id": -1, "event_timestamp": datetime.now(UTC), "seq": seq}])
        while served_seq(client, -1) != seq:
            pass
        latencies.append(time.time() - begun)
    values = np.array(latencies[1:])
    return {"pushes": pushes, "p50_s": float(np.percentile(values, 50)), "p99_s": float(np.percentile(values, 99))}


def served_seq(client, driver: int) -> int | None:
    result = client.get_online_features({"driver_id": [driver]}, features=["driver_seq:seq"])
    return result.values[0][0] if result.statuses[0][0] == PRESENT else None


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = [f"Freshness, Kafka produce -> gRPC served (trigger {args.trigger}, offline trigger "
             f"{args.offline_trigger or 'default'}, {args.drivers} drivers, {args.seconds:g} s measured per rate after "
             f"{args.warm_up:g} s of warm-up, polled every {args.poll_interval * 1000:g} ms, load "
             f"average {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores)", "",
             "| variant | rate (events/s) | achieved | events | served | missing | p50 (s) | p99 (s) | max (s) "
             "| polls | load at start |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['variant']} | {r['rate']:,} | {r['achieved_rate']:,} | {r['events']:,} | {r['served']:,} "
                     f"| {r['missing']:,} | {r['p50_s']:.3f} | {r['p99_s']:.3f} | {r['max_s']:.3f} | {r['polls']} "
                     f"| {r['load']:.1f} |")
    lines += ["", "p99 (s) of each 10 s of the measured span, in order:"]
    lines += [f"- {r['variant']}, {r['rate']:,}/s: {' '.join(f'{v:g}' for v in r['p99_per_10s'])}" for r in results]
    pushes = [r["push"] for r in results if r.get("push")]
    if pushes:
        lines += ["", "| push -> served (1 row, gRPC, online and offline) | pushes | p50 (s) | p99 (s) |",
                  "|---|---|---|---|"]
        lines += [f"| at {r['rate']:,} events/s streaming ({r['variant']}) | {p['pushes']} | {p['p50_s']:.3f} "
                  f"| {p['p99_s']:.3f} |"
                  for r, p in zip(results, pushes, strict=False)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rates", default="1000,10000", help="events/s, comma-separated")
    add("--seconds", type=float, default=60.0, help="measured producing time per rate")
    add("--warm-up", type=float, default=60.0,
        help="seconds produced at the rate before the measured ones (not in the percentiles)")
    add("--drivers", type=int, default=1000, help="entities the events go round (one poll reads them all)")
    add("--trigger", default="200 milliseconds", help="streaming.trigger_interval of the stream job")
    add("--offline-trigger", help="streaming.offline_trigger_interval (default: the config's)")
    add("--layouts", default="one", help=f"comma-separated, of {', '.join(LAYOUTS)} (see LAYOUTS)")
    add("--baseline", type=Path, help="a checkout to measure first at each rate, e.g. a git worktree")
    add("--poll-interval", type=float, default=0.05, help="seconds from one poll's start to the next")
    add("--drain", type=float, default=300.0, help="seconds to wait for the last events after producing")
    add("--startup", type=float, default=600.0, help="seconds the stream and server may take to start")
    add("--pushes", type=int, default=100, help="one-row pushes timed to served (0: none)")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, out: Path) -> list[dict]:
    """Every rate of ``args``, each on its own topic and repo, on one broker and redis-server."""
    from granero.streaming.local_broker import start_broker

    (out / "kafka").mkdir(parents=True, exist_ok=True)
    broker = start_broker(out / "kafka", timeout=args.startup)
    try:
        with private_redis(out / "redis") as redis_port:
            results = []
            for rate in args.rates.split(","):
                for source, layout in variants(args):
                    results.append(measure_rate(args, broker.bootstrap_servers, redis_port, int(rate), out, source,
                                                layout))
                    print(json.dumps(results[-1], default=str), flush=True)  # kept if a later rate fails
    finally:
        broker.stop(timeout=60)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))
    return results


def variants(args: argparse.Namespace) -> list[tuple[Path | None, str]]:
    """The checkouts and layouts measured at each rate, in order: the baseline (if any, one
    process), then this one in each of ``--layouts``."""
    baseline = [(args.baseline.resolve(), "one")] if args.baseline else []
    return baseline + [(None, layout) for layout in args.layouts.split(",")]


def phase(bench) -> None:
    """bench/run.py's ``freshness`` phase: the default rates, one run each, as rows and a note."""
    from bench.report import Row
    from bench.stats import spread

    args = parse_args([])
    results = run_all(args, bench.repos.granero.parent / "freshness")
    for r in results:
        for q in ("p50", "p99"):
            bench.results.add(Row(f"freshness Kafka -> gRPC served, {r['rate']:,} events/s, {q}", "s", "lower",
                                  granero=spread([r[f"{q}_s"]])))
        if r.get("push"):
            bench.results.add(Row(f"push 1 row -> gRPC served (streaming {r['rate']:,}/s), p99", "s", "lower",
                                  granero=spread([r["push"]["p99_s"]])))
    bench.results.notes.append(markdown(results, args))


def _out() -> Path:
    return BENCH / "out" / "freshness" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    results = run_all(args, _out())
    print(markdown(results, args))
    return results


if __name__ == "__main__":
    main()
