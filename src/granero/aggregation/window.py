"""Where a window starts and ends, on integer UTC microseconds since the epoch.

Every function works on Python ints and on numpy int64 arrays alike (``%`` and ``//`` floor in
both, so times before 1970 align like any other). The rule is in the package docstring.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

Micros = TypeVar("Micros")
"""An int or a numpy int64 array of microseconds since the epoch (UTC)."""

_MICROSECOND = timedelta(microseconds=1)


def to_micros(duration: timedelta) -> int:
    """A duration as whole microseconds."""
    return duration // _MICROSECOND


def floor_to_hop(time: Micros, hop: int) -> Micros:
    """The hop boundary at or before ``time``: ``time - (time mod hop)``."""
    return time - time % hop


def tile_of(time: Micros, hop: int) -> Micros:
    """The id of the tile ``[id * hop, (id + 1) * hop)`` that holds ``time``."""
    return time // hop


def tail(time: Micros, window: int, hop: int) -> Micros:
    """The earliest event time the window at ``time`` covers: ``floor_to_hop(time - window)``."""
    return floor_to_hop(time - window, hop)


def covers(event: Micros, time: Micros, window: int, hop: int) -> Micros:
    """Whether the window at ``time`` aggregates an event at ``event``: ``tail <= event <= time``."""
    return (tail(time, window, hop) <= event) & (event <= time)


def tiles_covered(time: int, window: int, hop: int) -> range:
    """The tile ids the window at ``time`` reads, oldest first: ``window // hop`` whole tiles, then
    the head tile of ``time``, of which only events at or before ``time`` count."""
    head = tile_of(time, hop)
    return range(head - window // hop, head + 1)
