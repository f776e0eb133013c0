"""One benchmark run: ``bash bench/run.sh [--scale small|default|large] [--runs N] ...``.

Generates seeded data and both repos under bench/out/<scale>/, starts a private redis-server,
then measures materialization, serving under load, in-process SDK lookups and training retrieval
for Granero, Feast and raw Redis side by side (phases.py). Prints the markdown table, writes
bench/out/results-<timestamp>.json and rewrites bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from bench import data as bench_data
from bench.freshness import phase as freshness_phase
from bench.phases import PHASES, SYSTEMS, Bench
from bench.processes import BENCH, ROOT, side
from bench.push import phase as push_phase
from bench.redis_server import free_port, private_redis, redis_version
from bench.report import Results, machine_details, markdown_table, results_markdown, write_json
from bench.repos import write_repos
from bench.scales import SCALES

PHASES = {**PHASES, "push": push_phase}  # bench/push.py: rows/s and p99 per push, beside Feast's
PHASES["freshness"] = freshness_phase  # bench/freshness.py: Kafka produce -> gRPC served, p50/p99


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--scale", choices=list(SCALES), default="default",
        help="small: 10k entities; default: 100k; large: 300k (10 rows and 20 features each)")
    add("--runs", type=int, default=3, help="repetitions of every measurement (median, min, max)")
    add("--seed", type=int, default=7, help="seed of the generated data and request streams")
    add("--end", type=datetime.fromisoformat, default=None,
        help="end of the generated data, ISO 8601 (default: this hour, so online values are fresh)")
    add("--concurrency", type=int, default=8, help="connections under load")
    add("--load-processes", type=int, default=2,
        help="processes of the load generator sharing those connections (threads each)")
    add("--server-workers", type=int, default=2,
        help="worker processes of both servers under load (Granero and Feast alike)")
    add("--requests", type=int, default=5000, help="request budget of one load run")
    add("--seconds", type=float, default=10.0, help="time budget of one load or SDK-lookup run")
    add("--sdk-calls", type=int, default=1000, help="call budget of one SDK-lookup run")
    add("--skip", action="append", default=[], choices=SYSTEMS,
        help="leave a system out (repeatable)")
    add("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    args = parser.parse_args(argv)
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown or args.runs < 1:
        parser.error(f"unknown phases {sorted(unknown)}" if unknown else "--runs must be >= 1")
    return args


def data_end(args: argparse.Namespace) -> datetime:
    if args.end is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return args.end.replace(tzinfo=UTC) if args.end.tzinfo is None else args.end.astimezone(UTC)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    scale, end, started = SCALES[args.scale], data_end(args), time.monotonic()
    out = BENCH / "out" / scale.name
    names = ("runs", "seed", "concurrency", "load_processes", "server_workers", "requests", "seconds", "sdk_calls")
    parameters = {name: getattr(args, name) for name in names}
    results = Results(scale.name, {**parameters, "end": end.isoformat()})
    data = bench_data.generate(out / "data", scale, end, args.seed)
    with private_redis(out / "redis") as port:
        repos = write_repos(out, scale, data.source_dir, port, free_port())
        bench = Bench(args, scale, data, repos, port, results, began=started)
        bench.log(f"scale {scale.name}: {scale.source_rows:,} source rows; redis-server on :{port}")
        prepare(bench)
        for name in args.phases.split(","):
            PHASES[name](bench)
    results.machine = {**machine_details(), "versions": versions(bench)}
    results.details["wall_seconds"] = time.monotonic() - started
    finish(results, args)


def prepare(bench: Bench) -> None:
    """Apply both repos; learn which Granero APIs exist yet (others are reported as n/a)."""
    for system in SYSTEMS:
        if system not in bench.args.skip:
            side(system, "apply", {"repo": str(bench.repo(system))})
    if "granero" not in bench.args.skip:
        bench.granero_apis = side("granero", "capabilities", {})


def versions(bench: Bench) -> dict:
    found = {"redis-server": redis_version()}
    for system in SYSTEMS:
        if system not in bench.args.skip:
            found.update(side(system, "versions", {}))
    found.pop("python", None)
    return found


def finish(results: Results, args: argparse.Namespace) -> None:
    print(markdown_table(results.rows))
    print("\n".join(f"- {note}" for note in results.notes))
    path = write_json(results, BENCH / "out")
    command = f"bash bench/run.sh --scale {args.scale} --runs {args.runs}"
    (BENCH / "RESULTS.md").write_text(results_markdown(results, command))
    print(f"\nwrote {path.relative_to(ROOT)} and bench/RESULTS.md "
          f"({results.details['wall_seconds']:.0f} s in all)", file=sys.stderr)


if __name__ == "__main__":
    main()
