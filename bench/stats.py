"""Summaries of measurements: median with min and max over runs, and latency percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max over repeated runs: the form every reported number takes."""
    if not values:
        return {}
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values: always a latency that was really observed."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(latencies_ms: Sequence[float], elapsed_s: float,
                    errors: int = 0) -> dict[str, Any]:
    """p50/p95/p99 in milliseconds, and completed requests per second of wall time."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return {"requests": 0, "errors": errors}
    return {"requests": len(ordered), "errors": errors,
            "p50_ms": percentile(ordered, 50), "p95_ms": percentile(ordered, 95),
            "p99_ms": percentile(ordered, 99),
            "throughput_rps": len(ordered) / elapsed_s if elapsed_s > 0 else 0.0}


def combine_runs(summaries: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per numeric metric, its spread over the runs' summaries."""
    first = summaries[0] if summaries else {}
    names = [k for k, v in first.items() if isinstance(v, int | float)]
    return {name: spread([s[name] for s in summaries if name in s]) for name in names}
