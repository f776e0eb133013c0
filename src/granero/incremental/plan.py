"""Which event-time windows an incremental run (re)materializes, and why: pure, no I/O.

A run always writes ``[last end, end)``, the event times no run has covered yet. It also rewrites
the windows where rows arrived late: each ``Change`` names a span of event time that the source
(or the landing folder) changed since the last run, or ``None`` for "anything may have
changed". A change counts only where it meets what was already materialized (the rest is
not late, just never asked for) and before ``end``; touching windows merge into one write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from granero.definitions.duration import format_duration
from granero.registry import Interval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Where an incremental run starts for a view that was never materialized."""

NEW_ROWS = "new event times"


@dataclass(frozen=True)
class Change:
    """Event times ``span`` may hold rows the offline table lacks (None: any event time)."""

    span: Interval | None
    reason: str


@dataclass(frozen=True)
class Rerun:
    """One window to (re)materialize, with every reason that put it in the plan."""

    window: Interval
    reason: str


def last_end(done: Sequence[Interval]) -> datetime:
    """The end of the last materialized interval (the epoch when there is none)."""
    return max((i.end for i in done), default=EPOCH)


def plan_windows(done: Sequence[Interval], end: datetime, changes: Sequence[Change]) -> list[Rerun]:
    """The disjoint, sorted windows to write: ``[last end, end)`` plus every change's span
    within the materialized intervals before ``end``."""
    start = last_end(done)
    pieces = [(Interval(start=start, end=end), NEW_ROWS)] if start < end else []
    for change in changes:
        pieces += [(part, change.reason) for part in covered(change.span, done, end)]
    return merged(pieces)


def covered(span: Interval | None, done: Sequence[Interval], end: datetime) -> list[Interval]:
    """The parts of ``span`` (all time when None) inside ``done`` and before ``end``."""
    parts = []
    for interval in done:
        first = max(interval.start, span.start) if span else interval.start
        last = min(interval.end, span.end, end) if span else min(interval.end, end)
        if first < last:
            parts.append(Interval(start=first, end=last))
    return parts


def merged(pieces: Sequence[tuple[Interval, str]]) -> list[Rerun]:
    """Overlapping or touching windows as one, their distinct reasons joined in order."""
    runs: list[tuple[Interval, list[str]]] = []
    for window, reason in sorted(pieces, key=lambda piece: piece[0].start):
        if runs and window.start <= runs[-1][0].end:
            last, reasons = runs[-1]
            joined = Interval(start=last.start, end=max(last.end, window.end))
            runs[-1] = (joined, reasons if reason in reasons else [*reasons, reason])
        else:
            runs.append((window, [reason]))
    return [Rerun(window, "; ".join(reasons)) for window, reasons in runs]


def utc_days(first: datetime, last: datetime) -> Interval:
    """The whole UTC days from ``first``'s to ``last``'s, inclusive: late windows are rewritten by
    day (the tables' partitions), so nearby changes merge into one write."""
    start = datetime.combine(first.astimezone(UTC).date(), time(), tzinfo=UTC)
    stop = datetime.combine(last.astimezone(UTC).date(), time(), tzinfo=UTC) + timedelta(days=1)
    return Interval(start=start, end=stop)


def lookback(done: Sequence[Interval], lateness: timedelta) -> Change | None:
    """The change a declared ``allowed_lateness`` implies: ``[last end - lateness, last end)``."""
    end = last_end(done)
    if not lateness or end == EPOCH:
        return None
    start = max(EPOCH, end - lateness)
    return Change(Interval(start=start, end=end), f"allowed_lateness {format_duration(lateness)}")
