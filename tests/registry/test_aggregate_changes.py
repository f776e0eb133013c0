"""plan/apply on aggregate views: what changes the values a name serves and what only adds.

The class of change is tested, not one example: for random aggregate views, every kind of edit
(window, function, column, hop, an event column's dtype, adding and removing aggregations, plain
<-> aggregate) is classified against the rule written in ``registry/diff.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero import FeatureStore
from granero.definitions import Entity, FeatureView, Field, FileSource, compile_definitions
from granero.definitions.aggregation import Aggregation
from granero.definitions.duration import format_duration
from granero.errors import BreakingChangeError
from granero.registry import breaking_changes, diff_definitions
from tests.aggregate_repo import AGGREGATE_VIEW
from tests.repo_builder import write_repo

DRIVER = Entity(name="driver", join_keys={"driver_id": "int64"})
SOURCE = FileSource(path="data/trips", timestamp_field="event_timestamp")
COLUMNS = {"fare": "float64", "distance": "float64", "driver_id": "int64"}
NUMERIC = ("count", "sum", "mean", "max", "stddev")
WINDOWS = ("1h", "2h", "1d", "7d")


def view(aggregations: list[dict], hop: str | None = None, dtypes: dict[str, str] | None = None) -> FeatureView:
    dtypes = {**COLUMNS, **(dtypes or {})}
    features = [Field(name=c, dtype=dtypes[c]) for c in ("fare", "distance")]
    return FeatureView(name="trips", entities=["driver"], source=SOURCE, features=features,
                       aggregations=[Aggregation(**a) for a in aggregations], hop=hop)


def defs(feature_view: FeatureView):
    return compile_definitions([("driver", DRIVER), ("trips", feature_view)])


def reasons(old: FeatureView, new: FeatureView) -> list[str]:
    return breaking_changes(defs(old), defs(new))


aggregate = st.fixed_dictionaries({
    "column": st.sampled_from(["fare", "distance", "driver_id"]),
    "window": st.sampled_from(WINDOWS),
}).flatmap(lambda a: st.fixed_dictionaries({
    **{k: st.just(v) for k, v in a.items()},
    "function": st.sampled_from(("count",) if a["column"] == "driver_id" else NUMERIC),
}))


@st.composite
def aggregate_views(draw) -> tuple[list[dict], str | None]:
    chosen = draw(st.lists(aggregate, min_size=1, max_size=5))
    named = [{**a, "name": f"agg_{i}"} for i, a in enumerate(chosen)]
    return named, draw(st.sampled_from([None, "1h"]))


@settings(max_examples=60, deadline=None)
@given(aggregate_views(), st.data())
def test_changing_how_a_kept_aggregate_is_computed_is_breaking(start, data):
    aggregations, hop = start
    index = data.draw(st.integers(0, len(aggregations) - 1))
    before = aggregations[index]
    field = data.draw(st.sampled_from(["window", "function", "column"]))
    if field == "window":
        value = data.draw(st.sampled_from([w for w in WINDOWS if w != before["window"]]))
        changed = {**before, "window": value}
    elif field == "function":
        if before["column"] == "driver_id":
            changed = {**before, "column": "fare", "function": "sum"}
        else:
            others = [f for f in NUMERIC if f != before["function"]]
            changed = {**before, "function": data.draw(st.sampled_from(others))}
    else:
        column = data.draw(st.sampled_from([c for c in ("fare", "distance") if c != before["column"]]))
        function = "count" if before["column"] == "driver_id" else before["function"]
        changed = {**before, "column": column, "function": function}
    after = [*aggregations[:index], changed, *aggregations[index + 1:]]
    found = reasons(view(aggregations, hop), view(after, hop))
    mine = [r for r in found if f"aggregate {before['name']!r} changes" in r]
    assert len(mine) == 1, found
    assert mine[0].startswith("feature view 'trips': ")
    for key in ("column", "function", "window"):
        assert (f"{key} from " in mine[0]) == (before[key] != changed[key]), mine[0]
    if hop is not None or view(aggregations).resolved_hop == view(after).resolved_hop:
        assert found == mine  # nothing else is reported


@settings(max_examples=60, deadline=None)
@given(aggregate_views(), aggregate)
def test_adding_an_aggregation_is_additive_unless_the_default_hop_moves(start, added):
    aggregations, hop = start
    old, new = view(aggregations, hop), view([*aggregations, {**added, "name": "agg_new"}], hop)
    found = reasons(old, new)
    if old.resolved_hop == new.resolved_hop:
        assert found == []
    else:
        assert hop is None
        assert found == [
            f"feature view 'trips': hop changes from {format_duration(old.resolved_hop)} to "
            f"{format_duration(new.resolved_hop)}; "
            f"aggregates {old.output_names} would serve other values than models were trained on (window "
            "tails round to the hop) and none online until the view is synced again"
        ]
    changes = diff_definitions(defs(old), defs(new))
    assert ("feature_view", "trips", "changed") in {(c.kind, c.name, c.op) for c in changes}


@settings(max_examples=40, deadline=None)
@given(aggregate_views(), st.data())
def test_removing_an_aggregation_is_reported_like_removing_a_feature(start, data):
    """Removing a feature breaks no stored value (its column is no longer read), so it is a
    change plan shows, not a refusal; the same holds for an aggregation, hop aside."""
    aggregations, hop = start
    if len(aggregations) < 2:
        return
    index = data.draw(st.integers(0, len(aggregations) - 1))
    kept = [a for i, a in enumerate(aggregations) if i != index]
    old, new = view(aggregations, hop), view(kept, hop)
    found = reasons(old, new)
    assert found == ([] if old.resolved_hop == new.resolved_hop else [found[0]])
    fields = [f for c in diff_definitions(defs(old), defs(new)) for f in c.fields]
    assert any(f.path == f"aggregations.agg_{index}" and f.new is None for f in fields), fields


def test_declared_hop_change_names_every_aggregate():
    aggregations = [{"column": "fare", "function": "sum", "window": "1d", "name": "fare_1d"},
                    {"column": "driver_id", "function": "count", "window": "7d", "name": "trips_7d"}]
    found = reasons(view(aggregations, "1h"), view(aggregations, "5m"))
    assert found == ["feature view 'trips': hop changes from 1h to 5m; aggregates ['fare_1d', 'trips_7d'] "
                     "would serve other values than models were trained on (window tails round to the hop) "
                     "and none online until the view is synced again"]
    assert reasons(view(aggregations, None), view(aggregations, "1h")) == []  # the default is 1h already


def test_event_column_dtype_change_names_the_aggregates_reading_it():
    aggregations = [{"column": "fare", "function": "sum", "window": "1d", "name": "fare_1d"},
                    {"column": "fare", "function": "max", "window": "2h", "name": "fare_max_2h"},
                    {"column": "distance", "function": "mean", "window": "2h", "name": "km_2h"}]
    found = reasons(view(aggregations), view(aggregations, dtypes={"fare": "int64"}))
    assert found == ["feature view 'trips': event column 'fare' changes dtype from float64 to int64; "
                     "aggregates ['fare_1d', 'fare_max_2h'] read it"]


def test_a_view_turning_aggregate_or_back_is_breaking():
    plain = FeatureView(name="trips", entities=["driver"], source=SOURCE, ttl="1d",
                        features=[Field(name="fare", dtype="float64"), Field(name="distance", dtype="float64")])
    aggregated = view([{"column": "fare", "function": "sum", "window": "1d"}])
    for old, new, change in ((plain, aggregated, "a plain view to an aggregate view"),
                             (aggregated, plain, "an aggregate view to a plain view")):
        found = reasons(old, new)
        assert len(found) == 1 and found[0].startswith(f"feature view 'trips': changes from {change}; "), found




def test_apply_refuses_a_changed_window_unless_forced_and_adds_freely(tmp_path):
    repo = write_repo(tmp_path / "repo", views=AGGREGATE_VIEW)
    store = FeatureStore(repo)
    store.apply()
    wider = AGGREGATE_VIEW.replace('window="1h", name="trips_1h"', 'window="2h", name="trips_1h"')
    (repo / "views.py").write_text(wider)
    assert store.plan().breaking == [
        "feature view 'driver_trips': aggregate 'trips_1h' changes window from 1h to 2h; the name would "
        "serve other values than models were trained on (a new name adds it instead)"
    ]
    with pytest.raises(BreakingChangeError, match="aggregate 'trips_1h' changes window from 1h to 2h"):
        store.apply()
    assert store.registry.current().version == 1
    assert store.apply(force=True)[1].version == 2
    added = wider.replace(
        '                  Aggregation(column="fare", function="mean", window="1d"),\n',
        '                  Aggregation(column="fare", function="mean", window="1d"),\n'
        '                  Aggregation(column="fare", function="max", window="1h"),\n',
    )
    (repo / "views.py").write_text(added)
    plan = store.plan()
    assert plan.breaking == []
    fields = {f.path: f.new for c in plan.changes for f in c.fields}
    assert fields == {"aggregations.fare_max_1h": {"column": "fare", "function": "max", "window": "1h",
                                                   "name": "fare_max_1h"}}
    assert store.apply()[1].version == 3
