"""Half-open event-time intervals [start, end), merged as materialization proceeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator, model_validator

from granero.errors import RegistryError


class Interval(BaseModel):
    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Naive datetimes are taken as UTC, the only time zone Granero stores."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} must be after start {self.start}")
        return self


def add_interval(intervals: list[Interval], new: Interval) -> list[Interval]:
    """``intervals`` plus ``new``, sorted, with overlapping or touching intervals merged."""
    merged: list[Interval] = []
    for interval in sorted([*intervals, new], key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(start=last.start, end=max(last.end, interval.end))
        else:
            merged.append(interval)
    return merged


def subtract_interval(intervals: list[Interval], done: Interval) -> list[Interval]:
    """``intervals`` without the instants of ``done`` (the parts left before and after it)."""
    left: list[Interval] = []
    for interval in intervals:
        if interval.end <= done.start or done.end <= interval.start:
            left.append(interval)
            continue
        if interval.start < done.start:
            left.append(Interval(start=interval.start, end=done.start))
        if done.end < interval.end:
            left.append(Interval(start=done.end, end=interval.end))
    return left


def read_interval_map(file: Path) -> dict[str, list[Interval]]:
    """A ``{view: [interval, ...]}`` JSON file (empty when it does not exist)."""
    if not file.exists():
        return {}
    try:
        raw = json.loads(file.read_text())
        return {view: [Interval.model_validate(i) for i in items] for view, items in raw.items()}
    except (OSError, ValueError, ValidationError) as error:
        raise RegistryError(f"{file} is unreadable: {error}") from None


def interval_map_json(state: dict[str, list[Interval]]) -> bytes:
    """What ``read_interval_map`` reads back; views without intervals are left out."""
    payload = {v: [i.model_dump(mode="json") for i in items] for v, items in state.items() if items}
    return json.dumps(payload, indent=1).encode()
