"""The pure half of verification: value equality and per-view comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from granero.online.encoding import to_micros
from granero.online.lookup import FeatureValue, OnlineResult, Status
from granero.online.verify import VerifyReport, compare_view, entity_tuple, same_value

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
    result = compare_view(view, keys, entities, offline, online)
    assert (result.view, result.checked, result.mismatches) == ("stats", 3, 3)
    assert [(m.entity, m.feature, m.offline, m.online, m.status) for m in result.examples] == [
        ({"driver_id": 2}, "conv_rate", 0.7, None, "OUTSIDE_MAX_AGE"),
        ({"driver_id": 2}, "trips", 4, None, "OUTSIDE_MAX_AGE"),
        ({"driver_id": 2}, "tier", "gold", None, "OUTSIDE_MAX_AGE"),
    ]
    report = VerifyReport(MOMENT, [result])
    assert not report.ok and report.to_dict()["views"][0]["mismatches"] == 3


def test_timestamps_compare_as_micros():
    assert entity_tuple({"at": MOMENT, "k": "a"}, {"at": "timestamp", "k": "string"}) == (
        to_micros(MOMENT),
        "a",
    )
