"""Verification: does the online store serve what training retrieval returns for the same moment?

For a sample of each online view's entities, the offline point-in-time values as of ``now``
(``get_historical_features``) are compared with an online lookup at ``now``. A null matches a
null whatever the online status says (NOT_FOUND after Redis expiry, OUTSIDE_MAX_AGE), because
both sides withhold the value. Floats compare exactly, as both sides come from the same stored
value; NaN matches NaN. Timestamps are compared as epoch microseconds, so no side's local time
zone can creep in.

Spark does the sampling and the offline side (small collects of ``sample`` rows); the
comparison itself is pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from granero.online.encoding import from_micros, to_micros
from granero.types import list_element

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from granero.definitions import FeatureView
    from granero.online.lookup import OnlineResult

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Mismatch:
    entity: dict[str, Any]
    feature: str
    offline: Any
    online: Any
    status: str
    """The online status of the value."""


@dataclass(frozen=True)
class ViewVerification:
    view: str
    checked: int
    """Entities compared."""
    mismatches: int
    """(entity, feature) pairs whose values differ."""
    examples: list[Mismatch] = field(default_factory=list)


@dataclass(frozen=True)
class VerifyReport:
    now: datetime
    views: list[ViewVerification]

    @property
    def ok(self) -> bool:
        return all(view.mismatches == 0 for view in self.views)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "ok": self.ok,
            "views": [asdict(view) for view in self.views],
        }


def sample_entities(
    latest: DataFrame, join_keys: dict[str, str], size: int, seed: int = 7
) -> list[dict[str, Any]]:
    """Up to ``size`` random entities (join key dicts) of a view's latest rows."""
    from pyspark.sql import functions as F

    picked = latest.select(*[_as_micros(F.col(k), d).alias(k) for k, d in join_keys.items()])
    rows = picked.orderBy(F.rand(seed)).limit(size).collect()
    return [
        {k: from_micros(row[k]) if d == "timestamp" else row[k] for k, d in join_keys.items()}
        for row in rows
    ]


def entity_frame(
    spark: SparkSession, join_keys: dict[str, str], entities: list[dict[str, Any]], now: datetime
) -> DataFrame:
    """The entity DataFrame asking for every entity's values as of ``now``."""
    from granero.types import spark_ddl

    schema = ", ".join(
        [*(f"`{k}` {spark_ddl(d)}" for k, d in join_keys.items()), "event_timestamp timestamp"]
    )
    return spark.createDataFrame([(*e.values(), now) for e in entities], schema)


def offline_values(
    frame: DataFrame, join_keys: dict[str, str], view: FeatureView
) -> dict[tuple, list[Any]]:
    """Per entity (key values, timestamps as micros), its feature values in a training set."""
    from pyspark.sql import functions as F

    keys = [_as_micros(F.col(f"`{k}`"), d).alias(k) for k, d in join_keys.items()]
    features = [
        _as_micros(F.col(f"`{view.name}__{f.name}`"), f.dtype).alias(f.name) for f in view.features
    ]
    rows = frame.select(*keys, *features).collect()
    width = len(join_keys)
    return {tuple(row[:width]): list(row[width:]) for row in rows}


def compare_view(
    view: FeatureView,
    join_keys: dict[str, str],
    entities: Sequence[dict[str, Any]],
    offline: dict[tuple, list[Any]],
    online: OnlineResult,
) -> ViewVerification:
    """Compare each entity's offline values with its online row (same order as ``entities``)."""
    mismatches: list[Mismatch] = []
    for entity, row in zip(entities, online.rows, strict=True):
        expected = offline.get(entity_tuple(entity, join_keys), [None] * len(view.features))
        for feature, want, got in zip(view.features, expected, row, strict=True):
            if not same_value(want, _micros_of(got.value)):
                mismatches.append(Mismatch(entity, feature.name, want, got.value, got.status.value))
    return ViewVerification(view.name, len(entities), len(mismatches), mismatches[:MAX_EXAMPLES])


def entity_tuple(entity: dict[str, Any], join_keys: dict[str, str]) -> tuple:
    return tuple(
        to_micros(entity[k]) if d == "timestamp" else entity[k] for k, d in join_keys.items()
    )


def same_value(a: Any, b: Any) -> bool:
    """Equality for feature values: None == None, NaN == NaN, lists element-wise."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not here
        return type(a) is type(b) and a == b
    return a == b


def _micros_of(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_micros(value)
    if isinstance(value, list):
        return [_micros_of(v) for v in value]
    return value


def _as_micros(column: Column, dtype: str) -> Column:
    """Timestamps as epoch micros (collecting a timestamp would apply the local time zone)."""
    from pyspark.sql import functions as F

    if dtype == "timestamp":
        return F.unix_micros(column)
    if list_element(dtype) == "timestamp":
        return F.transform(column, F.unix_micros)
    return column
