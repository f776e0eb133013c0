"""Verification: does the online store serve what training retrieval returns for the same moment?

For each online view's entities, the offline point-in-time values as of ``now`` are compared with
an online lookup at ``now``. A null matches a null whatever the online status says (NOT_FOUND
after Redis expiry, OUTSIDE_MAX_AGE), because both sides withhold the value. Floats compare
exactly, as both sides come from the same stored value; NaN matches NaN. Timestamps are compared
as epoch microseconds, so no side's local time zone can creep in.

An aggregate view is compared on what it serves (``output_fields``): the online value at ``now``
against the training value at ``now`` (``aggregate_as_of``), exactly: both fold the same tile
states in the same order, so floats agree bit for bit.

Every entity of a view is checked when it has at most ``sample`` of them (one skewed key among
many is then always found); a larger view is checked on a random ``sample``, and the report says
how many were checked of how many. A local table within ``retrieval.local_max_rows`` is read in
process (``offline/as_of_now.py``, no JVM); otherwise Spark lists the entities and answers the
offline side. The comparison itself is pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import COLUMN_STATUSES, Status
from granero.types import list_element

if TYPE_CHECKING:
    import pyarrow as pa
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
    total: int = 0
    """Entities the view's offline table holds (``checked`` of them were compared)."""
    engine: str = "local"
    """What read the offline side: ``local`` (in process) or ``spark``."""


@dataclass(frozen=True)
class Checked:
    """What to compare for one view: the entities and, per feature, their offline values."""

    entities: list[dict[str, Any]]
    offline: list[list[Any]]
    """Per feature (declared order), per entity: the training value at ``now`` (timestamps as
    epoch micros)."""
    total: int
    engine: str


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
        _as_micros(F.col(f"`{view.name}__{f.name}`"), f.dtype).alias(f.name) for f in view.output_fields
    ]
    rows = frame.select(*keys, *features).collect()
    width = len(join_keys)
    return {tuple(row[:width]): list(row[width:]) for row in rows}


def compare_view(view: FeatureView, checked: Checked, online: OnlineResult) -> ViewVerification:
    """Compare each entity's offline values with its online values (same order), column-wise;
    the examples are the first mismatches in entity, then feature, order."""
    wrong = [
        (i, j)
        for j, (column, served) in enumerate(zip(checked.offline, online.values, strict=True))
        for i, want in enumerate(column)
        if not same_value(want, _micros_of(served[i]))
    ]
    examples = [_mismatch(view, checked, online, i, j) for i, j in sorted(wrong)[:MAX_EXAMPLES]]
    return ViewVerification(
        view.name, len(checked.entities), len(wrong), examples, checked.total, checked.engine
    )


def _mismatch(view: FeatureView, checked: Checked, online: OnlineResult, i: int, j: int) -> Mismatch:
    value, status = online.values[j][i], COLUMN_STATUSES[online.statuses[j][i]]
    if status is Status.PRESENT and value is None:
        status = Status.NULL_VALUE
    return Mismatch(checked.entities[i], view.output_names[j], checked.offline[j][i], value,
                    status.value)


def pick(entities: pa.Table, sample: int, seed: int = 7) -> pa.Table:
    """All of ``entities`` when at most ``sample``, else ``sample`` of them drawn at random
    (seeded: the same table gives the same pick), in table order."""
    import numpy as np

    if entities.num_rows <= sample:
        return entities
    drawn = np.random.default_rng(seed).choice(entities.num_rows, sample, replace=False)
    return entities.take(np.sort(drawn))


def arrow_checked(view: FeatureView, entities: pa.Table, joined: pa.Table, total: int) -> Checked:
    """``Checked`` from the in-process engine: ``joined`` is ``entities`` plus
    ``<view>__<feature>`` columns (``offline.as_of_now.values_as_of``)."""
    offline = [
        [_micros_of(v) for v in joined[f"{view.name}__{f}"].to_pylist()]
        for f in view.output_names
    ]
    return Checked(entities.to_pylist(), offline, total, "local")


def spark_checked(
    spark: SparkSession,
    latest: DataFrame,
    view: FeatureView,
    join_keys: dict[str, str],
    sample: int,
    now: datetime,
    historical: Callable[[DataFrame, list[str]], DataFrame],
) -> Checked:
    """``Checked`` through Spark: ``sample`` random entities of the view's ``latest`` rows (all
    when it has no more), their values from ``historical`` (``get_historical_features``)."""
    entities = sample_entities(latest, join_keys, sample)
    blank = [None] * len(view.output_fields)
    if not entities:
        return Checked([], [[] for _ in blank], 0, "spark")
    training = historical(entity_frame(spark, join_keys, entities, now), [f"{view.name}:*"])
    offline = offline_values(training, join_keys, view)
    rows = [offline.get(entity_tuple(e, join_keys), blank) for e in entities]
    columns = [[row[j] for row in rows] for j in range(len(blank))]
    return Checked(entities, columns, latest.count(), "spark")


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
