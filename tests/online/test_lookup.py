"""lookup(): the four statuses, ttl judged at read time, request order, precise InvalidRequest
messages before any read, and one Redis round trip for many views and entities."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from granero import Field
from granero.definitions import compile_definitions
from granero.errors import InvalidRequest
from granero.online.lookup import FeatureValue, Status, lookup
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import write_rows
from tests.online.conftest import FRESH, NOW, request

pytestmark = pytest.mark.redis


def fill(store, defs) -> None:
    """Driver 1 fresh (tier null), 2 stale for `stats` (1h) but not for `daily` (2d), 3 nothing."""
    stats, daily, routes = (defs.feature_views[n] for n in ("stats", "daily", "routes"))
    stale = NOW - timedelta(hours=2)
    write_rows(
        store,
        stats,
        defs.join_keys(stats),
        [
            {"driver_id": 1, "event_timestamp": FRESH, "conv_rate": 0.25, "trips": 4, "tier": None},
            {
                "driver_id": 2,
                "event_timestamp": stale,
                "conv_rate": 0.5,
                "trips": 5,
                "tier": "gold",
            },
        ],
    )
    write_rows(
        store,
        daily,
        defs.join_keys(daily),
        [
            {"driver_id": 1, "event_timestamp": FRESH, "rating": 4.5},
            {"driver_id": 2, "event_timestamp": stale, "rating": 3.5},
        ],
    )
    write_rows(
        store,
        routes,
        defs.join_keys(routes),
        [
            {"zone": 1, "vehicle": "car", "event_timestamp": FRESH, "eta": 7.0},
            {"zone": 12, "vehicle": "bike", "event_timestamp": FRESH, "eta": 9.0},
        ],
    )


@pytest.fixture
def filled(replay_store, defs):
    fill(replay_store, defs)
    return replay_store


def test_statuses_values_and_request_order(filled, defs):
    views = request(defs, "stats:tier", "daily:rating", "stats:conv_rate")
    result = lookup(filled, views, [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 3}], NOW)
    assert result.feature_names == ["stats__tier", "stats__conv_rate", "daily__rating"]
    stale = NOW - timedelta(hours=2)
    assert result.rows == [
        [
            FeatureValue(None, Status.NULL_VALUE, FRESH),
            FeatureValue(0.25, Status.PRESENT, FRESH),
            FeatureValue(4.5, Status.PRESENT, FRESH),
        ],
        [
            FeatureValue(None, Status.OUTSIDE_MAX_AGE, stale),
            FeatureValue(None, Status.OUTSIDE_MAX_AGE, stale),
            FeatureValue(3.5, Status.PRESENT, stale),
        ],
        [FeatureValue(None, Status.NOT_FOUND, None)] * 3,
    ]
    assert result.to_dict() == {
        "stats__tier": [None, None, None],
        "stats__conv_rate": [0.25, None, None],
        "daily__rating": [4.5, 3.5, None],
    }


def test_ttl_end_is_inclusive(filled, defs):
    views = request(defs, "stats:trips")
    at_end = lookup(filled, views, [{"driver_id": 1}], FRESH + timedelta(hours=1))
    past_end = lookup(filled, views, [{"driver_id": 1}], FRESH + timedelta(hours=1, microseconds=1))
    assert at_end.rows[0][0] == FeatureValue(4, Status.PRESENT, FRESH)
    assert (
        past_end.rows[0][0].status is Status.OUTSIDE_MAX_AGE and past_end.rows[0][0].value is None
    )


def test_composite_keys_and_several_entities(filled, defs):
    views = request(defs, "routes:eta", "stats:trips")
    rows = [
        {"zone": 1, "vehicle": "car", "driver_id": 1, "unused": object()},
        {"zone": 12, "vehicle": "bike", "driver_id": 3},
        {"zone": 1, "vehicle": "bike", "driver_id": 1},
    ]
    assert lookup(filled, views, rows, NOW).to_dict() == {
        "routes__eta": [7.0, 9.0, None],
        "stats__trips": [4, None, 4],
    }


def test_a_view_whose_features_changed_reads_not_found_until_synced_again(filled, defs):
    stats = defs.feature_views["stats"]
    grown = stats.model_copy(
        update={"features": [*stats.features, Field(name="new", dtype="int64")]}
    )
    changed = compile_definitions([("driver", defs.entities["driver"]), ("stats", grown)])
    result = lookup(filled, request(changed, "stats:trips"), [{"driver_id": 1}], NOW)
    assert result.rows[0][0].status is Status.NOT_FOUND
    write_rows(
        filled,
        grown,
        changed.join_keys(grown),
        [{"driver_id": 1, "event_timestamp": FRESH, "trips": 6}],
    )
    assert lookup(filled, request(changed, "stats:trips"), [{"driver_id": 1}], NOW).to_dict() == {
        "stats__trips": [6]
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": "1001"}],
            "entity row 2: join key 'driver_id' of view 'stats' must be int64, got str '1001'",
        ),
        (
            [{"driver_id": True}],
            "entity row 0: join key 'driver_id' of view 'stats' must be int64, got bool True",
        ),
        (
            [{"driver_id": None}],
            "entity row 0: join key 'driver_id' of view 'stats' must be int64, got None",
        ),
        (
            [{"driver_id": 1.0}],
            "entity row 0: join key 'driver_id' of view 'stats' must be int64, got float 1.0",
        ),
        (
            [{"driver_id": 2**63}],
            "entity row 0: join key 'driver_id' of view 'stats' must be int64, got int "
            "9223372036854775808 (outside the int64 range",
        ),
        (
            [{"driver_id": 1}, {"zone": 1}],
            "entity row 1: missing join key 'driver_id' of view 'stats'",
        ),
        ([[1]], "entity row 0: must map join key names to values, got list"),
    ],
)
def test_invalid_rows_are_refused_with_precise_messages(store, defs, rows, message):
    with pytest.raises(InvalidRequest) as caught:
        lookup(store, request(defs, "stats:trips"), rows, NOW)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"zone": 2**31, "vehicle": "car"},
            "join key 'zone' of view 'routes' must be int32, got int 2147483648 "
            "(outside the int32 range -2147483648..2147483647)",
        ),
        (
            {"zone": 1, "vehicle": b"car"},
            "join key 'vehicle' of view 'routes' must be string, got bytes b'car'",
        ),
        ({"zone": 1}, "missing join key 'vehicle' of view 'routes'"),
    ],
)
def test_composite_key_messages(store, defs, row, message):
    with pytest.raises(InvalidRequest, match=r"^entity row 0: ") as caught:
        lookup(store, request(defs, "routes:eta"), [row], NOW)
    assert str(caught.value) == f"entity row 0: {message}"


def test_one_round_trip_for_many_views_and_entities_and_none_for_a_bad_request(own_redis, defs):
    store = RedisStore(RedisSettings(own_redis.url, expire_keys=False), "p")
    fill(store, defs)
    counters = redis.Redis.from_url(own_redis.url)
    counters.config_resetstat()
    rows = [{"driver_id": d, "zone": d % 13, "vehicle": "car"} for d in range(100)]
    result = lookup(store, request(defs, "stats:*", "daily:rating", "routes:eta"), rows, NOW)
    calls = {
        k: v["calls"]
        for k, v in counters.info("commandstats").items()
        if not k.startswith("cmdstat_config")
    }
    assert calls == {"cmdstat_mget": 1}
    assert len(result.rows) == 100 and len(result.feature_names) == 5
    assert result.rows[1][0] == FeatureValue(0.25, Status.PRESENT, FRESH)
    counters.config_resetstat()
    with pytest.raises(InvalidRequest):
        lookup(store, request(defs, "stats:trips"), [*rows, {"driver_id": "x"}], NOW)
    assert "cmdstat_mget" not in counters.info("commandstats")  # validated before reading
    store.close()


def test_empty_request_reads_nothing(store, defs):
    result = lookup(store, request(defs, "stats:trips"), [], NOW)
    assert result.feature_names == ["stats__trips"] and result.rows == []
