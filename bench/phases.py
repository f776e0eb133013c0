"""The four measured phases. Each adds rows and notes to the results; every clock runs in a
child process (processes.py), never in this one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from bench import data as bench_data
from bench import trip
from bench.load import WARMUP_REQUESTS
from bench.processes import FEAST_BIN, ROOT, load, side
from bench.redis_server import free_port
from bench.report import Results, Row
from bench.repos import FEAST_DB, GRANERO_DB, TTL_DAYS, Repos, feature_refs, write_trip_repos
from bench.scales import Scale
from bench.servers import (
    feast_command,
    feast_worker_restarts,
    granero_command,
    grpc_ready,
    http_ready,
    running,
)
from bench.stats import combine_runs, latency_summary, spread

BATCHES = (1, 100)
SAMPLE_IDS = list(range(1, 101))
SYSTEMS = ("granero", "feast")
ByBatch = dict[int, list[dict]]


@dataclass
class Bench:
    """What every phase needs: inputs, places, which Granero APIs exist yet, and the results."""

    args: argparse.Namespace
    scale: Scale
    data: bench_data.BenchData
    repos: Repos
    redis_port: int
    results: Results
    granero_apis: dict[str, bool] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)
    samples: dict[str, dict] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f}s] {message}", file=sys.stderr, flush=True)

    def redis_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def repo(self, system: str) -> Path:
        return self.repos.granero if system == "granero" else self.repos.feast

    @property
    def work(self) -> Path:
        return self.repos.granero.parent / "work"

    def measures(self, system: str, api: str) -> bool:
        """Whether to measure ``system``: not skipped and, for Granero, ``api`` exists yet."""
        if system in self.args.skip:
            return False
        if system == "granero" and not self.granero_apis.get(api, False):
            note = f"Granero: `{api}` is not available yet, so its cells are n/a."
            if note not in self.results.notes:
                self.results.notes.append(note)
            return False
        return True


def entities_label(batch: int) -> str:
    return f"{batch} entit{'y' if batch == 1 else 'ies'}"


# -- materialization ------------------------------------------------------------------------------


def materialization(bench: Bench) -> None:
    """Source -> offline store -> Redis (Granero) and source -> Redis (Feast), in rows/s."""
    rows, runs = bench.scale.source_rows, bench.args.runs
    end = bench.data.end + timedelta(seconds=1)
    window = {"start": bench.data.start.isoformat(), "end": end.isoformat(), "runs": runs}
    granero = feast = None
    if bench.measures("granero", "materialize"):
        bench.log(f"granero: materialize {rows:,} rows x {runs} runs")
        granero = side("granero", "materialize", {
            **window, "repo": str(bench.repos.granero), "redis_url": bench.redis_url(GRANERO_DB),
            "work_dir": str(bench.work / "materialize"),
            "sync": bench.measures("granero", "sync_online")})
    if bench.measures("feast", "materialize"):
        bench.log(f"feast: materialize {rows:,} rows x {runs} runs")
        feast = side("feast", "materialize", {
            **window, "repo": str(bench.repos.feast), "redis_url": bench.redis_url(FEAST_DB)})
    _materialization_rows(bench, granero, feast)


def _rate(rows: int, runs: list[dict] | None) -> dict | None:
    return spread([rows / r["seconds"] for r in runs]) if runs else None


def _materialization_rows(bench: Bench, granero: Any, feast: Any) -> None:
    rows, add = bench.scale.source_rows, bench.results.add
    offline = granero and granero["offline"]
    online = granero and granero["online"]
    to_redis = feast and feast["runs"]
    both = online and [{"seconds": o["seconds"] + s["seconds"]}
                       for o, s in zip(offline, online, strict=True)]
    add(Row("materialize: source -> offline store", "rows/s", "higher",
            granero=_rate(rows, offline)))
    add(Row("materialize: offline -> Redis (Feast: source -> Redis)", "rows/s", "higher",
            granero=_rate(rows, online), feast=_rate(rows, to_redis)))
    add(Row("materialize: source -> Redis, end to end", "rows/s", "higher",
            granero=_rate(rows, both), feast=_rate(rows, to_redis)))
    keys = {"granero": online and online[-1]["keys"], "feast": to_redis and to_redis[-1]["keys"]}
    bench.results.details["materialize"] = {"source_rows": rows, "redis_keys": keys,
                                            "granero": granero, "feast": feast}
    bench.results.notes.append(
        f"Materialization: {rows:,} source rows ({bench.scale.entities:,} entities x "
        f"{bench.scale.rows_per_entity}), rows/s counted in source rows, into empty stores every "
        f"run (fresh offline folder and registry; FLUSHDB); Redis keys written: {keys}. Feast has "
        "no offline materialization (it reads the source files at retrieval), hence n/a.")


# -- serving under load ---------------------------------------------------------------------------


def _load_runs(bench: Bench, name: str, target: dict, log: Path | None = None,
               fast_redis_client: bool = False) -> ByBatch:
    """Per batch size, every run's load summary (and Feast's worker restarts during it)."""
    by_batch: ByBatch = {}
    a = bench.args
    common = {"entities": bench.scale.entities, "count": a.requests, "seconds": a.seconds,
              "concurrency": a.concurrency, "processes": a.load_processes,
              "features": feature_refs(bench.scale), **target}
    for batch in BATCHES:
        for run in range(a.runs):
            bench.log(f"{name}: load, {entities_label(batch)}/request, run {run + 1}/{a.runs}")
            before = feast_worker_restarts(log) if log else 0
            spec = {**common, "batch": batch, "seed": a.seed + run}
            summary = load(spec, fast_redis_client)
            if log:
                summary["worker_restarts"] = feast_worker_restarts(log) - before
            by_batch.setdefault(batch, []).append(summary)
    return by_batch


def _feast_server(bench: Bench, logs: Path) -> ByBatch:
    port = free_port()
    command = feast_command(FEAST_BIN / "feast", bench.repos.feast, port, bench.args.server_workers)
    with running(command, port, logs / "feast-serve.log", http_ready) as server:
        target = {"target": "http", "address": server.address}
        return _load_runs(bench, "feast serve", target, server.log)


def _granero_server(bench: Bench, logs: Path) -> dict[str, ByBatch]:
    """Per request shape ("columns", "default"), the load runs against one server."""
    port = free_port()
    command = granero_command(ROOT / ".venv" / "bin" / "granero", bench.repos.granero, port,
                              bench.args.server_workers)
    with running(command, port, logs / "granero-serve.log", grpc_ready) as server:
        target = {"target": "grpc", "address": server.address}
        return {shape: _load_runs(bench, f"granero serve ({shape} shape)",
                                  {**target, "shape": shape})
                for shape in ("columns", "default")}


def serving(bench: Bench) -> None:
    """p50/p95/p99 and throughput under bounded concurrent load, per batch size."""
    measured: dict[str, ByBatch] = {}
    logs = bench.repos.granero.parent / "logs"
    default_shape: ByBatch = {}
    if bench.measures("feast", "serve"):
        measured["feast"] = _feast_server(bench, logs)
    if bench.measures("granero", "serve"):
        shapes = _granero_server(bench, logs)
        measured["granero"], default_shape = shapes["columns"], shapes["default"]
    synced = bench.results.details.get("materialize", {}).get("redis_keys", {})
    keyspace = "granero" if synced.get("granero") else "feast"
    db = GRANERO_DB if keyspace == "granero" else FEAST_DB
    raw = {"target": "redis", "redis_url": bench.redis_url(db)}
    measured["redis"] = _load_runs(bench, "raw redis", raw, fast_redis_client=True)
    _serving_rows(bench, measured)
    if default_shape:
        label = f"x {bench.scale.features} features, default shape (entity rows in, ROWS out)"
        _side_by_side(bench, label, {"granero": default_shape, "feast": measured.get("feast")})
    bench.results.details["serving_default_shape"] = default_shape
    _serving_notes(bench, {**measured, "granero (default shape)": default_shape}, keyspace)


def _serving_rows(bench: Bench, measured: dict[str, ByBatch]) -> None:
    metrics: tuple[tuple[str, str, str, Literal["higher", "lower"]], ...] = (
        ("p50_ms", "p50", "ms", "lower"), ("p95_ms", "p95", "ms", "lower"),
        ("p99_ms", "p99", "ms", "lower"), ("throughput_rps", "throughput", "req/s", "higher"))
    for batch in BATCHES:
        combined = {system: combine_runs(by_batch[batch]) for system, by_batch in measured.items()}
        for key, label, unit, better in metrics:
            name = f"server {label}, {entities_label(batch)} x {bench.scale.features} features"
            cells = {system: c.get(key) for system, c in combined.items()}
            bench.results.add(Row(name, unit, better, **cells))
    bench.results.details["serving"] = measured


def _serving_notes(bench: Bench, measured: dict[str, ByBatch], keyspace: str) -> None:
    def every(system: str) -> list[dict]:
        return [s for runs in measured.get(system, {}).values() for s in runs]

    errors = {system: sum(s["errors"] for s in every(system)) for system in measured}
    warmups = {system: sum(s.get("warmup_errors", 0) for s in every(system)) for system in measured}
    restarts = sum(s.get("worker_restarts", 0) for s in every("feast"))
    reconnects = sum(s.get("reconnects", 0) for s in every("feast"))
    a = bench.args
    bench.results.notes.append(
        f"Serving: {a.concurrency} connections from {a.load_processes} separate load process(es) "
        "(a thread per connection, sequential requests, encoded before the clock starts, every "
        f"answer decoded and checked), each run bounded by {a.requests:,} requests or "
        f"{a.seconds:g} s, after {WARMUP_REQUESTS} warm-up requests per connection. Both servers run "
        f"{a.server_workers} worker process(es): Granero `granero serve --workers` (gRPC, "
        "generated stub); Feast `feast serve --workers`, otherwise its defaults (HTTP/JSON, "
        "gunicorn, max_requests=1000+jitter, access log on); raw Redis: one pipeline of "
        f"HGETALL/GET per request over {keyspace}'s keys, redis-py with hiredis.")
    bench.results.notes.append(
        f"Feast worker restarts during load: {restarts} (keep-alive connections the client "
        f"re-opened: {reconnects}); failed requests: {errors}; failed warm-up requests (counted "
        f"apart: one failure no longer aborts a run): {warmups}.")


def _side_by_side(bench: Bench, label: str, measured: dict[str, ByBatch | None]) -> None:
    """p50, p99 and throughput rows per batch size, and a note with Granero's ratios to Feast
    (throughput G/F, higher is better; p50 F/G, how many times faster)."""
    ratios = []
    for batch in BATCHES:
        combined = {system: combine_runs(by_batch[batch])
                    for system, by_batch in measured.items() if by_batch}
        for key, name, unit, better in (("p50_ms", "p50", "ms", "lower"),
                                        ("p99_ms", "p99", "ms", "lower"),
                                        ("throughput_rps", "throughput", "req/s", "higher")):
            cells = {system: c.get(key) for system, c in combined.items()}
            bench.results.add(Row(f"server {name}, {entities_label(batch)} {label}", unit,
                                  better, **cells))
        granero, feast = combined.get("granero", {}), combined.get("feast", {})
        if granero.get("throughput_rps") and feast.get("throughput_rps"):
            rate = granero["throughput_rps"]["median"] / feast["throughput_rps"]["median"]
            faster = feast["p50_ms"]["median"] / granero["p50_ms"]["median"]
            ratios.append(f"{entities_label(batch)}: throughput {rate:.2f}x, p50 {faster:.2f}x "
                          "faster")
    failed = {system: sum(r["errors"] + r.get("warmup_errors", 0)
                          for runs in by_batch.values() for r in runs)
              for system, by_batch in measured.items() if by_batch}
    if ratios:
        bench.results.notes.append(f"Granero vs Feast, {label}: " + "; ".join(ratios)
                                   + f" (failed requests incl. warm-up: {failed}).")


# -- a multi-view service -------------------------------------------------------------------------


def multiview(bench: Bench) -> None:
    """The example repo's trip_eta_model shape (bench/trip.py), materialized by each system
    from the same sources, then served under the same load in each one's default request
    shape: Granero entity rows in and ROWS out over gRPC, Feast its HTTP/JSON API."""
    count = trip.trip_count(bench.scale.entities)
    out = bench.repos.granero.parent
    sources = trip.write_sources(out / "trip_data", count, bench.data.end, bench.args.seed)
    repos = write_trip_repos(out, sources, bench.redis_port)
    end = bench.data.end + timedelta(seconds=1)
    window = {"start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat(), "runs": 1}
    dbs = {"granero": trip.GRANERO_DB, "feast": trip.FEAST_DB}
    measured: dict[str, ByBatch | None] = {}
    target = {"entities": count, "keys": "trip", "features": None,
              "feature_service": trip.SERVICE, "feature_count": trip.service_feature_count()}
    for system, repo in (("feast", repos.feast), ("granero", repos.granero)):
        if not bench.measures(system, "serve"):
            continue
        bench.log(f"{system}: multi-view service, apply and materialize {count:,} keys per view")
        side(system, "apply", {"repo": str(repo)})
        side(system, "materialize", {**window, "repo": str(repo), "sync": True,
                                     "redis_url": bench.redis_url(dbs[system]),
                                     "work_dir": str(bench.work / "trip-materialize")})
        measured[system] = _trip_load(bench, system, repo, target)
    label = (f"x {trip.service_feature_count()} features, {trip.SERVICE} (3 views, 4 keys incl. a "
             "composite, a string feature), default shape")
    _side_by_side(bench, label, measured)
    bench.results.details["multiview"] = measured


def _trip_load(bench: Bench, system: str, repo: Path, target: dict) -> ByBatch:
    port, logs = free_port(), bench.repos.granero.parent / "logs"
    workers = bench.args.server_workers
    if system == "feast":
        command = feast_command(FEAST_BIN / "feast", repo, port, workers)
        with running(command, port, logs / "feast-trip-serve.log", http_ready) as server:
            return _load_runs(bench, "feast serve (trip)",
                              {**target, "target": "http", "address": server.address}, server.log)
    command = granero_command(ROOT / ".venv" / "bin" / "granero", repo, port, workers)
    with running(command, port, logs / "granero-trip-serve.log", grpc_ready) as server:
        return _load_runs(bench, "granero serve (trip)", {
            **target, "target": "grpc", "address": server.address, "shape": "default"})


# -- in-process SDK lookups -----------------------------------------------------------------------


def sdk_lookups(bench: Bench) -> None:
    """In-process ``get_online_features``: sequential calls, only Redis on the wire."""
    measured: dict[str, dict[int, dict]] = {}
    for system in SYSTEMS:
        if bench.measures(system, "get_online_features"):
            measured[system] = {batch: _sdk_runs(bench, system, batch) for batch in BATCHES}
    for batch in BATCHES:
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            name = f"SDK lookup {label}, {entities_label(batch)} x {bench.scale.features} features"
            cells = {s: by_batch[batch].get(key) for s, by_batch in measured.items()}
            bench.results.add(Row(name, "ms", "lower", **cells))
    bench.results.details["sdk"] = measured
    _compare_samples(bench)


def _sdk_runs(bench: Bench, system: str, batch: int) -> dict:
    a, summaries = bench.args, []
    for run in range(a.runs):
        bench.log(f"{system}: SDK lookups, {entities_label(batch)}/call, run {run + 1}/{a.runs}")
        result = side(system, "lookup", {
            "repo": str(bench.repo(system)), "features": feature_refs(bench.scale),
            "entities": bench.scale.entities, "batch": batch, "count": a.sdk_calls,
            "seconds": a.seconds, "seed": a.seed + run,
            "sample_ids": SAMPLE_IDS if run == 0 and batch == BATCHES[0] else []})
        summaries.append(latency_summary(result["latencies_ms"], result["elapsed_s"]))
        bench.samples[system] = result["sample"] or bench.samples.get(system, {})
    return combine_runs(summaries)


def _compare_samples(bench: Bench) -> None:
    """Both systems should serve the same latest values for the same entities."""
    granero, feast = bench.samples.get("granero"), bench.samples.get("feast")
    if granero and feast:
        same = sum(1 for i, values in granero.items() if _same_values(values, feast.get(i)))
        bench.results.notes.append(f"Online agreement: {same}/{len(granero)} sampled entities get "
                                   "identical values from Granero and Feast.")


def _same_values(left: list | None, right: list | None) -> bool:
    if left is None or right is None or len(left) != len(right):
        return False
    return all(a == b or (a is not None and b is not None and abs(a - b) < 1e-12)
               for a, b in zip(left, right, strict=True))


# -- training retrieval ---------------------------------------------------------------------------


def training(bench: Bench) -> None:
    """Point-in-time training retrieval at each entity-table size, and the rows each returns."""
    dfs = {str(size): str(path) for size, path in bench.data.entity_dfs.items()}
    measured = {}
    for system in SYSTEMS:
        if bench.measures(system, "get_historical_features"):
            bench.log(f"{system}: training retrieval at {list(dfs)} rows x {bench.args.runs} runs")
            measured[system] = side(system, "historical", {
                "repo": str(bench.repo(system)), "features": feature_refs(bench.scale),
                "entity_dfs": dfs, "runs": bench.args.runs,
                "work_dir": str(bench.work / "training")})["sizes"]
    for size in dfs:
        cells = {s: spread([r["seconds"] for r in m[size]["runs"]]) for s, m in measured.items()}
        bench.results.add(Row(f"training retrieval, {int(size):,} entity rows, pandas in and out",
                              "s", "lower", **cells))
    for size in dfs:
        if "spark_runs" in measured.get("granero", {}).get(size, {}):
            runs = measured["granero"][size]["spark_runs"]
            bench.results.add(Row(f"training retrieval on Spark, {int(size):,} entity rows, "
                                  "into Parquet", "s", "lower",
                                  granero=spread([r["seconds"] for r in runs])))
    _training_notes(bench, dfs, measured)


def _training_notes(bench: Bench, dfs: dict[str, str], measured: dict[str, dict]) -> None:
    ttl = timedelta(days=TTL_DAYS)
    expected = {size: bench_data.expected_rows_with_values(bench.data, int(size), ttl)
                for size in dfs}
    bench.results.details["training"] = {"measured": measured,
                                         "expected_rows_with_values": expected}
    parts = []
    for size in dfs:
        last = {s: m[size]["runs"][-1] for s, m in measured.items()}
        if "spark_runs" in measured.get("granero", {}).get(size, {}):
            last["granero on Spark"] = measured["granero"][size]["spark_runs"][-1]
        got = ", ".join(f"{s} {r['rows']:,} ({r['rows_with_values']:,})" for s, r in last.items())
        engine = measured.get("granero", {}).get(size, {}).get("engine")
        picked = f" (Granero's engine: {engine})" if engine else ""
        parts.append(f"{int(size):,} in{picked} -> {got}; correct {int(size):,} "
                     f"({expected[size]:,})")
    bench.results.notes.append(
        "Training rows returned (rows with feature values in parentheses; 'correct' comes from an "
        "independent pandas merge_asof): " + "; ".join(parts) + ". 'pandas in and out': Granero's "
        "`get_historical_features_pandas(pandas_df)` (in-process Arrow engine below "
        "`retrieval.local_max_rows` table rows, else Spark) against Feast's "
        "`get_historical_features(...).to_df()`, the entity table read into pandas before the "
        "clock. 'On Spark': a cached Spark DataFrame in, the result written to Parquet. All after "
        "one untimed warm-up retrieval.")


PHASES = {"materialize": materialization, "serving": serving, "multiview": multiview,
          "sdk": sdk_lookups, "training": training}
