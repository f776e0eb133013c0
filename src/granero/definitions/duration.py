"""Durations as definitions write them (``30d``, ``12h``, ``15m``, ``45s``, ``2w``) and back."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> object:
    """Accept ``30d``/``12h``/``15m``/``45s``/``2w`` besides pydantic's own timedelta forms."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    return value


def format_duration(value: timedelta) -> str:
    """A duration as a definition writes it (``2d``, ``36h``, ``90s``): the largest unit up to a
    day that divides it, so ``parse_duration`` reads it back; a fraction of a second as seconds."""
    micros = value // timedelta(microseconds=1)
    for unit in ("d", "h", "m", "s"):
        unit_micros = _UNIT_SECONDS[unit] * 1_000_000
        if micros % unit_micros == 0:
            return f"{micros // unit_micros}{unit}"
    return f"{value.total_seconds():g}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
