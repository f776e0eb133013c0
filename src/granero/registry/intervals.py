"""Half-open event-time intervals [start, end), merged as materialization proceeds."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, field_validator, model_validator


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
