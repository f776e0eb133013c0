"""On-demand overhead in process, without the store's round trip: the number a loaded box can still give.

    .venv/bin/python -m bench.on_demand_overhead [--rounds 300]
    nice -n -20 .venv/bin/python -m bench.on_demand_overhead   # on a shared machine

``bench.on_demand`` times real lookups; on a shared 2-core machine their medians move with the
neighbours' load (5x between runs). This one measures the part Granero adds: the same requests
(``bench.on_demand``'s repo, 1 and 100 entities: the plain feature, the bench feature in both
modes, vectorized ``ratio`` (four pyarrow.compute calls) and row-wise ``ratio_rows`` (Python
arithmetic), and the pass-through transform ``floor``), with the store's answers recorded once
and replayed from memory, so every call runs the whole library path (registry check, plan, key
checks, decode, inputs, transform, checks, answer) but no socket. Each cell is the fastest of
``--rounds`` blocks of 20 calls, the cells taking turns (a neighbour's burst hits them alike).
Overhead = on-demand cell minus plain cell; with ``floor`` it is Granero's part.

Two timings of the vectorized transform alone: in a tight loop (``transform alone``: caches and
branch predictors trained by the loop itself) and right after a plain lookup (``after a lookup``:
that pair minus the plain cell), which is what it costs inside a request, where the lookup's
Python code has just evicted pyarrow's from the caches.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.on_demand import BATCHES, ON_DEMAND, PLAIN, ROW, TRIVIAL, granero_repo, load_online, write_source
from bench.redis_server import free_port, private_redis

BLOCK = 20


def fastest_us(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Per call, microseconds in the fastest of ``rounds`` blocks of BLOCK calls, the calls
    taking turns every 10 blocks."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(max(1, rounds // 10)):
        for kind, call in calls.items():
            block = min(timeit.repeat(call, number=BLOCK, repeat=10)) / BLOCK * 1e6
            best[kind] = min(best[kind], block)
    return best


def replayed(store: Any) -> None:
    """The store answers each distinct read from memory after its first round trip."""
    online, answers = store.online_store, {}
    real = online.read

    def read(lookups: Any, windows: Any = ()) -> Any:
        key = (tuple(lookups), tuple(windows))
        if key not in answers:
            answers[key] = real(lookups, windows)
        return answers[key]

    online.read = read


def measure(store: Any, rounds: int, end: datetime, batches: tuple[int, ...] = BATCHES
            ) -> dict[str, float]:
    import pyarrow as pa

    view = store.transforms.transforms(store.registered())["ratio"]
    results = {}
    for batch in batches:
        rows = [{"driver_id": i} for i in random.Random(7).sample(range(1, 1001), batch)]
        request = {"val_to_add": [1.5] * batch}
        columns = {"conv_rate": pa.array([0.25] * batch), "val_to_add": pa.array(request["val_to_add"])}
        calls = {
            "plain": lambda r=rows: store.get_online_features(r, PLAIN, now=end),
            "on_demand": lambda r=rows, q=request: store.get_online_features(r, ON_DEMAND, request_data=q, now=end),
            "row": lambda r=rows, q=request: store.get_online_features(r, ROW, request_data=q, now=end),
            "trivial": lambda r=rows, q=request: store.get_online_features(r, TRIVIAL, request_data=q, now=end),
            "transform": lambda c=columns: view.transform(dict(c)),
            "plain_then_transform": lambda r=rows, c=columns: (
                store.get_online_features(r, PLAIN, now=end), view.transform(dict(c))),
        }
        for call in calls.values():
            for _ in range(50):  # plans, caches, first reads
                call()
        results |= {f"{kind}/{batch}": us for kind, us in fastest_us(calls, rounds).items()}
    return results


def report(results: dict[str, float], batches: tuple[int, ...] = BATCHES) -> str:
    lines = ["| entities | plain (us) | vectorized (us) | row (us) | pass-through (us) "
             "| overhead vectorized (us) | overhead row (us) | Granero's part (us) "
             "| transform alone (us) | transform after a lookup (us) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for batch in batches:
        plain, od, row, floor, alone, after = (results[f"{k}/{batch}"] for k in (
            "plain", "on_demand", "row", "trivial", "transform", "plain_then_transform"))
        lines.append(f"| {batch} | {plain:.1f} | {od:.1f} | {row:.1f} | {floor:.1f} | {od - plain:.1f} "
                     f"| {row - plain:.1f} | {floor - plain:.1f} | {alone:.1f} | {after - plain:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)),
                        help="entity counts, e.g. 1,10,30,100 (where row mode stops paying)")
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batches.split(","))
    end = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as scratch, private_redis(Path(scratch) / "redis") as port:
        source = Path(scratch) / "driver_stats.parquet"
        write_source(source, 1000, end)
        store = load_online(granero_repo(Path(scratch) / "repo", source, port, free_port()), source)
        replayed(store)
        load = os.getloadavg()[0]
        results = measure(store, args.rounds, end, batches)
        store.close()
    print(report(results, batches))
    print(f"\nLoad average (1 min) at the start and end: {load:.1f}, {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
