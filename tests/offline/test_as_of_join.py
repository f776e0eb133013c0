"""The as-of join against the brute-force oracle, on many random seeds in one Spark job.

Seeds are batched: every key gets a leading ``seed`` key column, so the histories of different
seeds never meet and one plan checks them all. Full ties are removed by materialization's own
``drop_full_ties`` first, exactly as the offline table would hold them. Each oracle test runs
twice: on whole tables, and on tables first cut by ``visible_rows`` (the path of few entity rows).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from granero.offline.as_of_join import AsOfSpec, as_of_join, visible_rows
from granero.offline.materialize import drop_full_ties
from granero.types import spark_ddl
from tests.offline.oracle import OracleView, expected_values
from tests.offline.random_data import (
    BASE,
    FEATURE_DTYPES,
    KEY_DTYPES,
    VIEWS,
    as_time,
    generate,
)

pytestmark = pytest.mark.spark

SEEDS = range(30)
REQUESTED = {
    "pair": ["f_list", "f_double", "f_int"],
    "text": ["f_bool", "f_str"],
    "single": ["f_int"],
}
BUCKET_WIDTHS = {"pair": 1, "text": 3, "single": None}
"""Bucket width in ttls: 1 copies every row into the next bucket; None is the default width."""


def _spec(view: OracleView) -> AsOfSpec:
    keys = {"seed": "int32", **{k: KEY_DTYPES[k] for k in view.keys}}
    width = BUCKET_WIDTHS[view.name]
    return AsOfSpec(
        keys=keys,
        ttl=timedelta(microseconds=view.ttl),
        outputs={f: f"{view.name}__{f}" for f in REQUESTED[view.name]},
        bucket_width=width and timedelta(microseconds=view.ttl * width),
    )


def _table_frame(spark, view: OracleView, rows: list[tuple[int, dict]]):
    columns = ["seed", *view.keys, "event_timestamp", "created_timestamp", *view.features]
    ddl = [
        "seed int",
        *[f"{k} {spark_ddl(KEY_DTYPES[k])}" for k in view.keys],
        "event_timestamp timestamp",
        "created_timestamp timestamp",
        *[f"{f} {spark_ddl(FEATURE_DTYPES[f])}" for f in view.features],
    ]
    data = [
        (
            seed,
            *[r[k] for k in view.keys],
            as_time(r["event"]),
            as_time(r["created"]),
            *[r[f] for f in view.features],
        )
        for seed, r in rows
    ]
    frame = spark.createDataFrame(data, ", ".join(ddl))
    return drop_full_ties(frame.toDF(*columns), ["seed", *view.keys], view.features)


def _entity_frame(spark, rows: list[tuple[int, dict]]):
    data = [
        (r["row"], seed, r["a"], r["b"], r["s"], r["t"], as_time(r["ts"]), r["label"])
        for seed, r in rows
    ]
    return spark.createDataFrame(
        data,
        "row int, seed int, a bigint, b int, s string, t string, "
        "event_timestamp timestamp, label int",
    )


def _expected(seeds) -> Counter:
    expected = Counter()
    for seed in seeds:
        entities, tables = generate(seed)
        for entity in entities:
            values = []
            for name, view in VIEWS.items():
                values += expected_values(entity, tables[name], view, REQUESTED[name])
            expected[(entity["row"], seed, entity["label"], *map(_hashable, values))] += 1
    return expected


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _joined(spark, seeds, pruned: bool = False):
    generated = {seed: generate(seed) for seed in seeds}
    entities = _entity_frame(
        spark, [(s, e) for s, (entities, _) in generated.items() for e in entities]
    )
    frame = entities
    for name, view in VIEWS.items():
        rows = [(s, r) for s, (_, tables) in generated.items() for r in tables[name]]
        table = _table_frame(spark, view, rows)
        if pruned:
            table = visible_rows(table, entities, _spec(view))
        frame = as_of_join(frame, table, _spec(view))
    return frame


@pytest.mark.parametrize("pruned", [False, True], ids=["whole", "visible_rows"])
def test_as_of_join_matches_the_oracle_on_random_histories(spark, pruned):
    frame = _joined(spark, SEEDS, pruned)
    outputs = [f"{name}__{f}" for name in VIEWS for f in REQUESTED[name]]
    assert frame.columns == [
        "row",
        "seed",
        "a",
        "b",
        "s",
        "t",
        "event_timestamp",
        "label",
        *outputs,
    ]
    actual = Counter(
        (r["row"], r["seed"], r["label"], *[_hashable(r[c]) for c in outputs])
        for r in frame.select("row", "seed", "label", *outputs).collect()
    )
    expected = _expected(SEEDS)
    assert sum(actual.values()) == sum(expected.values())
    mismatched = sorted(set(actual) ^ set(expected))[:5]
    assert actual == expected, f"first differences: {mismatched}"
    values = [v for key in expected for v in key[3:]]
    assert (
        values.count(None) > 100 and len(values) - values.count(None) > 1000
    )  # both cases exercised


def test_plan_has_no_join_and_one_shuffle_per_view(spark):
    plan = _joined(spark, [0])._jdf.queryExecution().executedPlan().toString()
    for forbidden in (
        "CartesianProduct",
        "NestedLoopJoin",
        "SortMergeJoin",
        "BroadcastHashJoin",
        "PythonUDF",
    ):
        assert forbidden not in plan
    assert plan.count("Window [") >= len(VIEWS)


@pytest.mark.parametrize("pruned", [False, True], ids=["whole", "visible_rows"])
def test_boundaries_are_inclusive_and_null_values_are_carried(spark, pruned):
    """The documented rule on a hand-made history (ttl 10s): both ends of [ts - ttl, ts] count."""
    table = spark.createDataFrame(
        [
            (1, as_time(0), None, 1.0),
            (1, as_time(10_000_000), None, None),
            (2, as_time(5), as_time(6), 2.0),
            (2, as_time(5), None, 3.0),
        ],
        "k bigint, event_timestamp timestamp, created_timestamp timestamp, v double",
    )
    entities = spark.createDataFrame(
        [
            (1, as_time(0), "at event"),
            (1, as_time(9_999_999), "inside"),
            (1, as_time(10_000_000), "null value"),
            (1, as_time(20_000_001), "past ttl"),
            (2, as_time(5), "created wins"),
            (3, as_time(5), "no history"),
        ],
        "k bigint, event_timestamp timestamp, case string",
    )
    spec = AsOfSpec({"k": "int64"}, timedelta(seconds=10), {"v": "v"})
    if pruned:
        table = visible_rows(table, entities, spec)
    result = {r["case"]: r["v"] for r in as_of_join(entities, table, spec).collect()}
    assert result == {
        "at event": 1.0,
        "inside": 1.0,
        "null value": None,
        "past ttl": None,
        "created wins": 2.0,
        "no history": None,
    }


_BASE_MICROS = int(BASE.timestamp()) * 1_000_000


def test_visible_rows_keeps_exactly_the_rows_some_entity_row_can_see(spark):
    """A table row survives iff an entity row with its keys has ts in [event, event + ttl]."""
    seeds = range(10)
    generated = {seed: generate(seed) for seed in seeds}
    entities = [(s, e) for s, (rows, _) in generated.items() for e in rows]
    frame = _entity_frame(spark, entities)
    for name, view in VIEWS.items():
        rows = [(s, r) for s, (_, tables) in generated.items() for r in tables[name]]
        table = spark.createDataFrame(
            [(s, *[r[k] for k in view.keys], as_time(r["event"])) for s, r in rows],
            ", ".join(
                ["seed int", *[f"{k} {spark_ddl(KEY_DTYPES[k])}" for k in view.keys],
                 "event_timestamp timestamp"]
            ),
        )
        kept = visible_rows(table, frame, _spec(view)).selectExpr(
            "seed", *view.keys, f"unix_micros(event_timestamp) - {_BASE_MICROS} AS event"
        )
        expected = Counter(
            (s, *[r[k] for k in view.keys], r["event"])
            for s, r in rows
            if any(
                es == s and e["ts"] is not None
                and all(e[k] == r[k] for k in view.keys)
                and r["event"] <= e["ts"] <= r["event"] + view.ttl
                for es, e in entities
            )
        )
        assert Counter(tuple(r) for r in kept.collect()) == expected, name
        assert 0 < sum(expected.values()) < len(rows), name  # some rows kept, some cut


def test_visible_rows_is_one_broadcast_semi_join(spark):
    """The entity summary is broadcast: the table is not shuffled for the cut, only for the join."""
    view = VIEWS["pair"]
    generated = generate(0)
    entities = _entity_frame(spark, [(0, e) for e in generated[0]])
    table = _table_frame(spark, view, [(0, r) for r in generated[1]["pair"]])
    joined = as_of_join(entities, visible_rows(table, entities, _spec(view)), _spec(view))
    plan = joined._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan and "LeftSemi" in plan
    assert "SortMergeJoin" not in plan and "NestedLoopJoin" not in plan
