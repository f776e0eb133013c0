"""Definitions as their authors write them, for people to read (describe, list, plan).

``model_dump(mode="json")`` stays the registry's form (its content hash depends on it); this form
differs only where pydantic's JSON differs from the definition language, durations (``P2D`` there,
``2d`` here).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from granero.definitions.duration import format_duration


def dump_as_written(definition: BaseModel) -> dict[str, Any]:
    """``definition.model_dump(mode="json")`` with every duration as written (``2d``)."""
    return _as_written(definition, definition.model_dump(mode="json"))


def _as_written(value: Any, dumped: Any) -> Any:
    """Walk the object and its JSON form side by side, replacing what JSON made of durations."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return {key: _as_written(getattr(value, key, None), item) for key, item in dumped.items()}
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {key: _as_written(value.get(key), item) for key, item in dumped.items()}
    if isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        return [_as_written(v, item) for v, item in zip(value, dumped, strict=True)]
    return dumped
