"""read_columns(): the same answers as the row path, read_views (statuses, values, event times,
withheld values, schema changes, precise InvalidRequest messages), column-wise and decoded by
numpy. lookup() is built on it; tests/online/test_online_result.py checks what lookup answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from granero import Field
from granero.definitions import compile_definitions
from granero.errors import GraneroError, InvalidRequest
from granero.online.encoding import (
    batch_values,
    decode_batch,
    from_micros,
    to_micros,
    value_codec,
)
from granero.online.lookup import (
    COLUMN_STATUSES,
    ROW_BY_ROW_BELOW,
    FeatureValue,
    Status,
    ViewReader,
    read_columns,
    read_views,
    rows_to_columns,
)
from granero.online.sync import write_rows
from granero.types import arrow_type
from tests.online.conftest import FRESH, NOW, request
from tests.online.test_lookup import fill

pytestmark = pytest.mark.redis

ROWS = [{"driver_id": d, "zone": z, "vehicle": v}
        for d, z, v in ((1, 1, "car"), (2, 12, "bike"), (3, 1, "bike"), (1, 1, "car"))]
MANY = ROW_BY_ROW_BELOW // len(ROWS) + 1
"""Copies of ROWS that take the numpy path; fewer rows are decoded row by row."""


def columns_lookup(store, views, rows: list[dict[str, Any]], now=NOW) -> list[list[FeatureValue]]:
    """read_columns' answer rebuilt as lookup()'s rows, to compare the two value by value."""
    readers = [ViewReader.of(view) for view in views]
    reads = read_columns(store, readers, rows_to_columns(readers, rows), to_micros(now))
    answer = []
    for i in range(len(rows)):
        row = []
        for read in reads:
            status = COLUMN_STATUSES[read.status[i]]
            event = None if status is Status.NOT_FOUND else from_micros(int(read.event_micros[i]))
            for column, gaps in zip(read.values, read.missing, strict=True):
                missing = i in gaps
                assert not missing or column[i] in (0, None)  # withheld values are never carried
                own = Status.NULL_VALUE if missing and status is Status.PRESENT else status
                row.append(FeatureValue(None if missing else column[i], own, event))
        answer.append(row)
    return answer


def rows_lookup(store, views, rows: list[dict[str, Any]], now=NOW) -> list[list[FeatureValue]]:
    """The row path, read_views then ViewReader.values: what lookup() answered before it was
    built on read_columns, the oracle of its answers."""
    readers = [ViewReader.of(view) for view in views]
    reads = read_views(store, readers, rows, to_micros(now))
    return [[value for reader, read in zip(readers, row, strict=True)
             for value in reader.values(read)] for row in reads]


@pytest.fixture
def filled(replay_store, defs):
    fill(replay_store, defs)
    return replay_store


@pytest.mark.parametrize("copies", [1, MANY], ids=["row by row", "numpy"])
@pytest.mark.parametrize("refs", [
    ("stats:tier", "daily:rating", "stats:conv_rate"),
    ("stats:*",),
    ("routes:eta", "stats:trips", "daily:*"),
])
def test_the_same_answers_as_the_row_path(filled, defs, refs, copies):
    views, rows = request(defs, *refs), ROWS * copies
    assert columns_lookup(filled, views, rows) == rows_lookup(filled, views, rows)


@pytest.mark.parametrize("copies", [1, ROW_BY_ROW_BELOW], ids=["row by row", "numpy"])
def test_ttl_end_is_inclusive_and_values_past_it_are_withheld(filled, defs, copies):
    views, rows = request(defs, "stats:trips", "stats:tier"), [{"driver_id": 1}] * copies
    at_end = columns_lookup(filled, views, rows, FRESH + timedelta(hours=1))
    past = columns_lookup(filled, views, rows, FRESH + timedelta(hours=1, microseconds=1))
    assert at_end[-1][0] == FeatureValue(4, Status.PRESENT, FRESH)
    assert past[-1] == [FeatureValue(None, Status.OUTSIDE_MAX_AGE, FRESH)] * 2


def test_a_view_whose_features_changed_reads_not_found(filled, defs):
    stats = defs.feature_views["stats"]
    grown = stats.model_copy(update={"features": [*stats.features, Field(name="new", dtype="int64")]})
    changed = compile_definitions([("driver", defs.entities["driver"]), ("stats", grown)])
    views = request(changed, "stats:trips")
    assert columns_lookup(filled, views, [{"driver_id": 1}]) == [
        [FeatureValue(None, Status.NOT_FOUND, None)]]
    write_rows(filled, grown, changed.join_keys(grown),
               [{"driver_id": 1, "event_timestamp": FRESH, "trips": 6}])
    assert columns_lookup(filled, views, [{"driver_id": 1}, {"driver_id": 2}]) == [
        [FeatureValue(6, Status.PRESENT, FRESH)], [FeatureValue(None, Status.NOT_FOUND, None)]]


@pytest.mark.parametrize("copies", [1, ROW_BY_ROW_BELOW], ids=["row by row", "numpy"])
def test_an_unreadable_format_version_names_the_view(filled, defs, copies):
    filled.client.set(b"%s:stats:i" % filled.project.encode() + (1).to_bytes(8, "big"),
                      b"\x09" + bytes(40))
    with pytest.raises(GraneroError, match="online value of view 'stats' is unreadable: online "
                       "value has format version 9"):
        columns_lookup(filled, request(defs, "stats:trips"), [{"driver_id": 1}] * copies)


@pytest.mark.parametrize(("columns", "message"), [
    ({"driver_id": [1, "2"]},
     "entity row 1: join key 'driver_id' of view 'stats' must be int64, got str '2'"),
    ({"driver_id": [1, True]},
     "entity row 1: join key 'driver_id' of view 'stats' must be int64, got bool True"),
    ({"driver_id": [None]},
     "entity row 0: join key 'driver_id' of view 'stats' must be int64, got None"),
    ({"driver_id": [2**63]}, "entity row 0: join key 'driver_id' of view 'stats' must be int64, "
     "got int 9223372036854775808 (outside the int64 range"),
    ({"zone": [1]}, "entity columns: missing join key 'driver_id' of view 'stats'"),
    ({"driver_id": [1, 2], "zone": [1]},
     "entity columns have different lengths: {'driver_id': 2, 'zone': 1}"),
])
def test_invalid_columns_are_refused_with_precise_messages(store, defs, columns, message):
    readers = [ViewReader.of(view) for view in request(defs, "stats:trips")]
    with pytest.raises(InvalidRequest) as caught:
        read_columns(store, readers, columns, to_micros(NOW))
    assert str(caught.value).startswith(message)


def test_composite_key_columns_are_checked_per_key(store, defs):
    readers = [ViewReader.of(view) for view in request(defs, "routes:eta")]
    with pytest.raises(InvalidRequest) as caught:
        read_columns(store, readers, {"zone": [1, 2**31], "vehicle": ["a", "b"]}, to_micros(NOW))
    assert str(caught.value) == ("entity row 1: join key 'zone' of view 'routes' must be int32, "
                                 "got int 2147483648 (outside the int32 range "
                                 "-2147483648..2147483647)")


def test_no_entity_rows_read_nothing(store, defs):
    readers = [ViewReader.of(view) for view in request(defs, "stats:*")]
    (read,) = read_columns(store, readers, {}, to_micros(NOW))
    assert read == ([], [], [[], [], []], [[], [], []])


MOMENT = datetime(2026, 1, 7, 12, 30, 15, 123456, tzinfo=UTC)
SAMPLES = {
    "int32": -(2**31), "int64": 2**62, "float32": 0.5, "float64": 1 / 3, "bool": True,
    "string": "héllo", "bytes": b"\x00\xff", "timestamp": MOMENT,
    "list<int32>": [1, None, -2], "list<string>": ["a", "", None], "list<bytes>": [b"x"],
    "list<timestamp>": [MOMENT, None],
}


def test_decode_batch_reads_what_decode_reads_for_every_dtype():
    """Rows with every value, with nulls, written under another schema, and absent."""
    import pyarrow as pa

    features = tuple((f"v{i}", dtype) for i, dtype in enumerate(SAMPLES))
    codec, other = value_codec(features), value_codec(features[:-1])
    stamps = pa.array([FRESH, FRESH], pa.timestamp("us", tz="UTC"))
    columns = [pa.array([value, None], arrow_type(d)) for d, value in SAMPLES.items()]
    full, nulls = codec.encode_columns(stamps, pa.nulls(2, stamps.type), columns)
    (foreign,) = other.encode_columns(stamps[:1], pa.nulls(1, stamps.type),
                                      [c.slice(0, 1) for c in columns[:-1]])
    data = [full, None, nulls, foreign, full]
    wanted = tuple(reversed(range(len(features))))
    batch = decode_batch(codec, data)
    assert batch.found.tolist() == [True, False, True, False, True]
    missing = batch.nulls[:, wanted] | ~batch.found[:, None]
    values = batch_values(codec, batch, wanted, missing)
    for row, raw in enumerate(data):
        stored = codec.decode(raw, wanted) if raw else None
        expected = stored.values if stored else [None] * len(wanted)
        got = [None if missing[row, k] else column[row] for k, column in enumerate(values)]
        micros = [to_micros(v) if isinstance(v, datetime) else v for v in expected]
        assert got == micros
        assert int(batch.event_micros[row]) == (stored.event_micros if stored else 0)
