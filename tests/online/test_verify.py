"""The pure half of verification: value equality and per-view comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from granero.online.encoding import to_micros
from granero.online.lookup import FeatureValue, OnlineResult, Status
from granero.online.verify import (
    Checked,
    VerifyReport,
    compare_view,
    entity_tuple,
    pick,
    same_value,
)

MOMENT = datetime(2026, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (None, None, True),
        (0.1, 0.1, True),
        (float("nan"), float("nan"), True),
        (0.1, 0.1000001, False),
        (1, True, False),
        (True, True, True),
        (None, 0, False),
        ([1.0, None], [1.0, None], True),
        ([1.0], [1.0, 2.0], False),
        (bytearray(b"x"), b"x", True),
        ("a", "b", False),
    ],
)
def test_same_value(a, b, same):
    assert same_value(a, b) is same


def test_compare_view_counts_mismatches_and_keeps_examples(defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    entities = [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 3}]
    offline = {(1,): [0.5, 3, None], (2,): [0.7, 4, "gold"]}  # 3 has no offline row: all null
    present = [
        FeatureValue(0.5, Status.PRESENT, MOMENT),
        FeatureValue(3, Status.PRESENT, MOMENT),
        FeatureValue(None, Status.NULL_VALUE, MOMENT),
    ]
    stale = [FeatureValue(None, Status.OUTSIDE_MAX_AGE, MOMENT)] * 3
    missing = [FeatureValue(None, Status.NOT_FOUND, None)] * 3
    online = OnlineResult.from_rows(
        ["stats__conv_rate", "stats__trips", "stats__tier"], [present, stale, missing]
    )
    rows = [offline.get(entity_tuple(e, keys), [None] * 3) for e in entities]
    checked = Checked(entities, [list(column) for column in zip(*rows, strict=True)], 250, "local")
    result = compare_view(view, checked, online)
    assert (result.view, result.checked, result.total, result.mismatches) == ("stats", 3, 250, 3)
    assert [(m.entity, m.feature, m.offline, m.online, m.status) for m in result.examples] == [
        ({"driver_id": 2}, "conv_rate", 0.7, None, "OUTSIDE_MAX_AGE"),
        ({"driver_id": 2}, "trips", 4, None, "OUTSIDE_MAX_AGE"),
        ({"driver_id": 2}, "tier", "gold", None, "OUTSIDE_MAX_AGE"),
    ]
    report = VerifyReport(MOMENT, [result])
    assert not report.ok and report.to_dict()["views"][0]["mismatches"] == 3
    assert report.to_dict()["views"][0]["total"] == 250


def test_examples_are_the_first_mismatches_by_entity_and_statuses_say_null(defs):
    view = defs.feature_views["stats"]
    entities = [{"driver_id": d} for d in range(8)]
    offline = [[0.5] * 8, [1] * 8, ["x"] * 8]
    values = [[0.5] * 8, [1] * 8, ["x"] * 8]
    values[2][6] = None  # a PRESENT row holding null: NULL_VALUE
    values[0][7] = 0.25
    online = OnlineResult(["a", "b", "c"], values, [[0] * 8] * 3, [[1] * 8] * 3)
    result = compare_view(view, Checked(entities, offline, 8, "spark"), online)
    assert result.mismatches == 2 and result.engine == "spark"
    assert [(m.entity["driver_id"], m.feature, m.status) for m in result.examples] == [
        (6, "tier", "NULL_VALUE"), (7, "conv_rate", "PRESENT")
    ]


@pytest.mark.parametrize("size", [0, 5, 300])
def test_pick_takes_everything_up_to_the_sample_and_a_seeded_draw_above(size):
    import pyarrow as pa

    table = pa.table({"k": list(range(size))})
    assert pick(table, 300).equals(table)  # all entities when there are no more than asked
    drawn = pick(table, 4)
    assert drawn.num_rows == min(size, 4) and drawn.equals(pick(table, 4))  # deterministic
    assert drawn["k"].to_pylist() == sorted(set(drawn["k"].to_pylist()))  # distinct, in order


def test_timestamps_compare_as_micros():
    assert entity_tuple({"at": MOMENT, "k": "a"}, {"at": "timestamp", "k": "string"}) == (
        to_micros(MOMENT),
        "a",
    )
