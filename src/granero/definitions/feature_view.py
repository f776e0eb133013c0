"""Feature views: a set of features computed from one source for one or more entities."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BeforeValidator, field_validator, model_validator

from granero.definitions.base import Definition, Model, check_identifier
from granero.definitions.entity import Entity
from granero.definitions.expressions import check_spark_expression
from granero.definitions.field import Field
from granero.definitions.source import Source
from granero.types import parse_dtype

if TYPE_CHECKING:
    from granero.definitions.feature_service import FeatureSelection

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


def _checked_dtype(field: Field) -> str:
    try:
        return parse_dtype(field.dtype)
    except ValueError as error:
        raise ValueError(f"feature {field.name!r}: {error}") from None


class Aggregation(Model):
    """A windowed aggregation over a source column (reserved: lands in a later release)."""

    column: str
    function: Literal["sum", "count", "avg", "min", "max", "last"]
    window: Duration
    name: str = ""


class FeatureView(Definition):
    """Features of one or more entities, derived from one source.

    Each feature is read from the source column of the same name, or computed by the Spark SQL
    expression in ``transformations``. ``filter`` is an optional Spark SQL row predicate. A value
    is served, online and in training sets, only while it is at most ``ttl`` old.
    """

    kind: ClassVar[str] = "feature_view"

    entities: list[str | Entity]
    source: Source
    features: list[Field]
    ttl: Duration
    transformations: dict[str, str] = {}
    filter: str | None = None
    online: bool = True
    partition_columns: list[str] = []
    aggregations: list[Aggregation] = []

    @field_validator("entities")
    @classmethod
    def _has_entities(cls, value: list) -> list:
        if not value:
            raise ValueError("a feature view needs at least one entity")
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: list[Field]) -> list[Field]:
        if not value:
            raise ValueError("a feature view needs at least one feature")
        value = [f.model_copy(update={"dtype": _checked_dtype(f)}) for f in value]
        names = [f.name for f in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names {duplicates}")
        return value

    @field_validator("ttl")
    @classmethod
    def _positive_ttl(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {value}")
        return value

    @field_validator("transformations")
    @classmethod
    def _expressions_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for feature, expression in value.items():
            check_identifier(feature, "transformation target")
            try:
                check_spark_expression(expression)
            except ValueError as error:
                raise ValueError(f"transformation for {feature!r}: {error}") from None
        return value

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, value: str | None) -> str | None:
        return None if value is None else check_spark_expression(value)

    @field_validator("aggregations")
    @classmethod
    def _aggregations_reserved(cls, value: list) -> list:
        if value:
            raise ValueError("windowed aggregations are not supported yet (reserved for a later release)")
        return value

    @model_validator(mode="after")
    def _transformations_target_features(self) -> FeatureView:
        unknown = sorted(set(self.transformations) - {f.name for f in self.features})
        if unknown:
            raise ValueError(f"transformations for undeclared features {unknown}; declare them in features")
        return self

    @property
    def entity_names(self) -> list[str]:
        return [e.name if isinstance(e, Entity) else e for e in self.entities]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Field:
        for field in self.features:
            if field.name == name:
                return field
        raise KeyError(name)

    def __getitem__(self, names: str | list[str]) -> FeatureSelection:
        """``view[["a", "b"]]`` selects a subset of the view's features for a service."""
        from granero.definitions.feature_service import FeatureSelection

        return FeatureSelection(view=self, features=[names] if isinstance(names, str) else names)
