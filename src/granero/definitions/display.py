"""Definitions as their authors write them, for people to read (describe, list, plan).

``model_dump(mode="json")`` stays the registry's form (its content hash depends on it); this form
differs only where pydantic's JSON differs from the definition language, durations (``P2D`` there,
``2d`` here).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from granero.definitions.duration import format_duration

if TYPE_CHECKING:
    from granero.definitions.aggregation import Aggregation
    from granero.definitions.feature_view import FeatureView


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


def aggregation_text(aggregation: Aggregation) -> str:
    """``mean(fare) over 7d``: how listings show what an aggregate computes."""
    return f"{aggregation.function}({aggregation.column}) over {format_duration(aggregation.window)}"


def aggregate_view_details(view: FeatureView) -> dict[str, Any]:
    """What an aggregate view derives from its definition, for ``describe``: the hop in force
    (declared or the default for its windows), the served features and what each computes, and
    the event columns (stored offline per event, read by the aggregates, never served)."""
    dtypes = {f.name: f.dtype for f in view.output_fields}
    return {
        "hop": format_duration(view.resolved_hop),
        "hop_declared": view.hop is not None,
        "served_features": [
            {"name": a.name, "dtype": dtypes[a.name], "function": a.function, "column": a.column,
             "window": format_duration(a.window)}
            for a in view.aggregations
        ],
        "event_columns": [{"name": f.name, "dtype": f.dtype} for f in view.features],
    }
