"""Feature views: a set of features computed from one source for one or more entities."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator, model_validator

from granero.definitions.aggregation import Aggregation, output_dtype, resolve_hop
from granero.definitions.base import Definition, check_identifier
from granero.definitions.duration import Duration, format_duration
from granero.definitions.entity import Entity
from granero.definitions.expressions import check_spark_expression
from granero.definitions.field import Field
from granero.definitions.source import Source
from granero.definitions.stream_source import StreamSource, check_stream_source
from granero.definitions.write_transform import WriteTransform, check_write_transform
from granero.types import parse_dtype

if TYPE_CHECKING:
    from granero.definitions.feature_service import FeatureSelection

def _checked_dtype(field: Field) -> str:
    try:
        return parse_dtype(field.dtype)
    except ValueError as error:
        raise ValueError(f"feature {field.name!r}: {error}") from None


_OUTPUT_FIELDS: dict[int, tuple[FeatureView, list[Field]]] = {}
"""An aggregate view's output fields by the view's id (the view kept, to check identity)."""


class FeatureView(Definition):
    """Features of one or more entities, derived from one source.

    Each feature is read from the source column of the same name, or computed by the Spark SQL
    expression in ``transformations``. ``filter`` is an optional Spark SQL row predicate. A value
    is served, online and in training sets, only while it is at most ``ttl`` old.

    With ``aggregations`` the view is an *aggregate view* over an event source: ``features``
    declare the typed event columns the aggregations read (kept per event offline, not served),
    and what is served and trained is one output per aggregation (``output_fields``), computed
    over windows of tiles ``hop`` long (``docs/aggregations.md`` states the rule). Its ``ttl`` is
    not declared: it is the largest window plus the hop, the span of events any value reads.
    """

    kind: ClassVar[str] = "feature_view"

    entities: list[str | Entity]
    source: Source
    features: list[Field]
    ttl: Duration | None = None
    transformations: dict[str, str] = {}
    filter: str | None = None
    online: bool = True
    partition_columns: list[str] = []
    aggregations: list[Aggregation] = []
    hop: Duration | None = None
    stream_source: StreamSource | None = None
    """Where fresh rows arrive continuously (``granero stream``); ``source`` stays the batch source."""
    write_transform: WriteTransform | None = None
    """A Python transform computing some features at materialization (``definitions.write_transform``)."""

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
    def _positive_ttl(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
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

    @field_validator("stream_source")
    @classmethod
    def _streamable(cls, value: StreamSource | None) -> StreamSource | None:
        return check_stream_source(value)

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, value: str | None) -> str | None:
        return None if value is None else check_spark_expression(value)

    @model_validator(mode="after")
    def _transformations_target_features(self) -> FeatureView:
        unknown = sorted(set(self.transformations) - {f.name for f in self.features})
        if unknown:
            raise ValueError(f"transformations for undeclared features {unknown}; declare them in features")
        check_write_transform(self.write_transform, self.feature_names, list(self.transformations))
        return self

    @model_validator(mode="after")
    def _ttl_or_windows(self) -> FeatureView:
        """A plain view declares its ttl; an aggregate view's is derived from its windows."""
        if not self.aggregations:
            if self.hop is not None:
                raise ValueError("hop: only a view with aggregations has a hop")
            if self.ttl is None:
                raise ValueError("ttl: a feature view without aggregations needs a ttl")
            return self
        span = max(a.window for a in self.aggregations) + resolve_hop(self.hop, self.aggregations)
        if self.ttl is not None and self.ttl != span:
            raise ValueError(
                f"ttl: an aggregate view's ttl is its largest window plus the hop "
                f"({format_duration(span)}); drop ttl={format_duration(self.ttl)}"
            )
        object.__setattr__(self, "ttl", span)  # frozen model: set once, during validation
        return self

    @property
    def entity_names(self) -> list[str]:
        return [e.name if isinstance(e, Entity) else e for e in self.entities]

    @property
    def feature_names(self) -> list[str]:
        """The declared columns: stored offline (for an aggregate view, its event columns)."""
        return [f.name for f in self.features]

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregations)

    @property
    def resolved_hop(self) -> timedelta:
        """The tile size of an aggregate view: the declared hop or the default for its windows."""
        return resolve_hop(self.hop, self.aggregations)

    @property
    def output_fields(self) -> list[Field]:
        """What is served, trained on and listed: the features of a plain view, one field per
        aggregation (typed per ``definitions.aggregation.output_dtype``) of an aggregate view."""
        if not self.aggregations:
            return self.features
        built = _OUTPUT_FIELDS.get(id(self))
        if built is None or built[0] is not self:  # built once per (frozen) view, not per lookup
            dtypes = {f.name: f.dtype for f in self.features}
            fields = [Field(name=a.name, dtype=output_dtype(a.function, dtypes.get(a.column, "int64")))
                      for a in self.aggregations]
            if len(_OUTPUT_FIELDS) >= 4096:
                _OUTPUT_FIELDS.clear()
            built = _OUTPUT_FIELDS[id(self)] = (self, fields)
        return list(built[1])

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.output_fields]

    def output_field(self, name: str) -> Field:
        for field in self.output_fields:
            if field.name == name:
                return field
        raise KeyError(name)

    def feature(self, name: str) -> Field:
        for field in self.features:
            if field.name == name:
                return field
        raise KeyError(name)

    def __getitem__(self, names: str | list[str]) -> FeatureSelection:
        """``view[["a", "b"]]`` selects a subset of the view's features for a service."""
        from granero.definitions.feature_service import FeatureSelection

        return FeatureSelection(view=self, features=[names] if isinstance(names, str) else names)
