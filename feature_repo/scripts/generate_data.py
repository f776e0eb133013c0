"""Deterministic source data for the example repo (seeded; nothing large is committed).

    python feature_repo/scripts/generate_data.py [--out feature_repo/data] [--seed 7]
        [--end 2026-01-08T00:00:00Z] [--days 3] [--drivers 50] [--customers 80]

Writes Parquet sources under ``<out>/sources`` (trip_events: one row per trip, 7 days further back than the
others, for the aggregate view) and a training entity table ``<out>/trips.parquet``
(driver_id, customer_id, pickup_zone, dropoff_zone, event_timestamp, label). ``--end`` defaults to
the current hour, so the demo's online lookups find fresh values.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd


def _hours(end: datetime, days: int, step_minutes: int = 60) -> pd.DatetimeIndex:
    return pd.date_range(end=end, periods=days * 24 * 60 // step_minutes, freq=f"{step_minutes}min", tz="UTC")


def driver_stats(rng: np.random.Generator, end: datetime, days: int, drivers: int) -> pd.DataFrame:
    grid = pd.MultiIndex.from_product([np.arange(1001, 1001 + drivers), _hours(end, days)]).to_frame(index=False)
    grid.columns = ["driver_id", "event_timestamp"]
    rows = grid[rng.random(len(grid)) < 0.7].reset_index(drop=True)
    n = len(rows)
    rows["conv_rate"] = rng.random(n).round(4)
    rows["acc_rate"] = rng.random(n).round(4)
    rows["avg_daily_trips"] = rng.integers(0, 60, n)
    rows.loc[rng.random(n) < 0.02, "conv_rate"] = np.nan  # upstream gaps
    rows["created"] = rows["event_timestamp"] + pd.to_timedelta(rng.integers(1, 30, n), unit="min")
    return rows


def customer_profile(rng: np.random.Generator, end: datetime, days: int, customers: int) -> pd.DataFrame:
    grid = pd.MultiIndex.from_product([np.arange(2001, 2001 + customers), _hours(end, days, 24 * 60)])
    rows = grid.to_frame(index=False)
    rows.columns = ["customer_id", "event_timestamp"]
    n = len(rows)
    rows["current_balance"] = rng.normal(50, 20, n).round(2)
    rows["lifetime_trip_count"] = rng.integers(0, 300, n)
    rows["avg_passenger_count"] = rng.uniform(1, 4, n).round(2)
    return rows


def route_stats(rng: np.random.Generator, end: datetime, days: int, zones: int = 6) -> pd.DataFrame:
    zone = np.arange(1, zones + 1, dtype=np.int32)
    grid = pd.MultiIndex.from_product([zone, zone, _hours(end, days, 30)]).to_frame(index=False)
    grid.columns = ["pickup_zone", "dropoff_zone", "window_end"]
    n = len(grid)
    grid["avg_duration_min"] = rng.uniform(4, 60, n).round(1)
    grid["trips_last_hour"] = rng.integers(0, 40, n)
    grid["surge_multiplier"] = rng.choice([1.0, 1.2, 1.5, 2.0], n).astype(np.float32)
    grid["created"] = grid["window_end"] + pd.Timedelta(minutes=2)
    return grid


def trips(rng: np.random.Generator, end: datetime, days: int, drivers: int, customers: int, n: int) -> pd.DataFrame:
    start = end - timedelta(days=days)
    seconds = rng.integers(0, int((end - start).total_seconds()), n)
    return pd.DataFrame({
        "driver_id": rng.integers(1001, 1001 + drivers + 5, n),  # a few drivers with no history
        "customer_id": rng.integers(2001, 2001 + customers, n),
        "pickup_zone": rng.integers(1, 7, n).astype(np.int32),
        "dropoff_zone": rng.integers(1, 7, n).astype(np.int32),
        "event_timestamp": pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s"),
        "label": rng.integers(0, 2, n),
    })


def pickup_points(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each trip's request values for the on-demand ``pickup`` view (``dispatch.py``): where the
    rider waits and where the driver was, in degrees around one city (its own random stream)."""
    n = len(frame)
    pickup_lat, pickup_lon = 40.42 + rng.normal(0, 0.04, n), -3.70 + rng.normal(0, 0.05, n)
    return frame.assign(pickup_lat=pickup_lat.round(5), pickup_lon=pickup_lon.round(5),
                        driver_lat=(pickup_lat + rng.normal(0, 0.02, n)).round(5),
                        driver_lon=(pickup_lon + rng.normal(0, 0.025, n)).round(5))


LONGEST_WINDOW_DAYS = 7
"""Trip events reach this much further back than the training rows, so every 7d window is full."""


def trip_events(rng: np.random.Generator, end: datetime, days: int, drivers: int, customers: int) -> pd.DataFrame:
    """One row per trip, about one an hour per driver: fare, distance, status (cancelled trips
    are filtered out before aggregating), a few fares missing, a few events arriving hours late."""
    days += LONGEST_WINDOW_DAYS
    start = end - timedelta(days=days)
    per_driver = rng.poisson(days * 24 * rng.uniform(0.3, 1.5, drivers))
    n = int(per_driver.sum())
    seconds = rng.integers(0, int((end - start).total_seconds()), n)
    distance = rng.lognormal(1.2, 0.6, n).round(2)
    rows = pd.DataFrame({
        "driver_id": np.repeat(np.arange(1001, 1001 + drivers), per_driver),
        "customer_id": rng.integers(2001, 2001 + customers, n),
        "event_timestamp": pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s"),
        "fare": (2.5 + 1.6 * distance + rng.normal(0, 1.5, n)).clip(2.5).round(2),
        "distance_km": distance,
        "status": rng.choice(["completed", "cancelled"], n, p=[0.93, 0.07]),
    })
    rows.loc[rng.random(n) < 0.02, "fare"] = np.nan  # fare not recorded
    late = rng.random(n) < 0.03
    delay = np.where(late, rng.integers(2 * 3600, 12 * 3600, n), rng.integers(5, 300, n))
    rows["created"] = rows["event_timestamp"] + pd.to_timedelta(delay, unit="s")
    return rows.sort_values("event_timestamp", ignore_index=True)


def write(frame: pd.DataFrame, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "part-00000.parquet", index=False, coerce_timestamps="us", allow_truncated_timestamps=True)


def generate(out: Path, seed: int, end: datetime, days: int, drivers: int, customers: int, n_trips: int) -> None:
    rng = np.random.default_rng(seed)
    sources = out / "sources"
    write(driver_stats(rng, end, days, drivers), sources / "driver_stats")
    write(customer_profile(rng, end, days, customers), sources / "customer_profile")
    write(route_stats(rng, end, days), sources / "route_stats")
    trips(rng, end, days, drivers, customers, n_trips).pipe(pickup_points, np.random.default_rng([seed, 2])).to_parquet(
        out / "trips.parquet", index=False, coerce_timestamps="us", allow_truncated_timestamps=True
    )
    # its own stream, so adding it left the other sources' values as they were
    write(trip_events(np.random.default_rng([seed, 1]), end, days, drivers, customers), sources / "trip_events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")), default=None)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--drivers", type=int, default=50)
    parser.add_argument("--customers", type=int, default=80)
    parser.add_argument("--trips", type=int, default=500)
    args = parser.parse_args()
    end = args.end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    generate(args.out, args.seed, end.astimezone(UTC), args.days, args.drivers, args.customers, args.trips)
    print(f"wrote example sources ending {end.isoformat()} to {args.out}")


if __name__ == "__main__":
    main()
