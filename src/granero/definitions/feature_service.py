"""Feature services: the named set of features one model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, field_validator

from granero.definitions.base import Definition, Model
from granero.definitions.feature_view import FeatureView
from granero.definitions.on_demand import OnDemandFeatureView


class FeatureSelection(Model):
    """A view, and optionally a subset of its features (None means all of them)."""

    view: str | FeatureView | OnDemandFeatureView
    features: list[str] | None = None

    @property
    def view_name(self) -> str:
        return self.view if isinstance(self.view, str) else self.view.name


def _as_selections(value: object) -> object:
    if isinstance(value, list):
        return [FeatureSelection(view=v) if isinstance(v, FeatureView | OnDemandFeatureView) else v for v in value]
    return value


class FeatureService(Definition):
    """A model's feature set; served online and retrieved for training by one name."""

    kind: ClassVar[str] = "feature_service"

    features: Annotated[list[FeatureSelection], BeforeValidator(_as_selections)]
    """Views (all their features) or ``view[["a", "b"]]`` selections."""

    @field_validator("features")
    @classmethod
    def _not_empty(cls, value: list[FeatureSelection]) -> list[FeatureSelection]:
        if not value:
            raise ValueError("a feature service needs at least one feature view")
        return value


def event_columns_refusal(view: FeatureView, names: Sequence[str]) -> str | None:
    """Why ``names`` cannot be selected when they are event columns of an aggregate view (read by
    its aggregations, stored offline, never served), listing what the view serves; None otherwise."""
    columns = [n for n in names if view.is_aggregate and n in view.feature_names]
    if not columns:
        return None
    return (
        f"feature view {view.name!r} is an aggregate view: {columns} are event columns its aggregations "
        f"read, not features; it serves {view.output_names}"
    )
