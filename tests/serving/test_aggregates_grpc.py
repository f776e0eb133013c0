"""The consistency proof over gRPC: a real server on loopback, real Redis; the value served at t
equals the training value of an entity row at t, exactly, in both layouts (ROWS from entity rows,
few and many; COLUMNS from key columns), for an int64-keyed and a composite (int32, string) keyed
aggregate view, at request times sweeping every tail crossing. The server's clock is set per
request (``now_micros``); the value's event timestamp says which t it was evaluated at. A feature
service mixes a plain view and aggregates.
"""

from __future__ import annotations

import random
import struct
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pyarrow as pa
import pytest

from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.spec import aggregation_spec
from granero.feature_store import FeatureStore
from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import Status
from granero.serving.columnar import decode_columns_response, encode_key_columns
from granero.serving.config import ServingConfig
from granero.serving.convert import decode_result, encode_entity_rows
from granero.serving.server import ServerHandle, build_server
from granero.serving.servicer import FeatureServingServicer
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from tests.online.aggregate_members import write_events
from tests.serving.conftest import write_rows

pytestmark = pytest.mark.redis

SECOND = 1_000_000
BASE = to_micros(datetime(2026, 1, 8, 12, tzinfo=UTC))
HOP = 10 * SECOND
WINDOWS = (30 * SECOND, 120 * SECOND)
DEFINITIONS = {
    "entities.py": '''
        from granero import Entity
        driver = Entity(join_keys={"driver_id": "int64"})
        route = Entity(join_keys={"zone": "int32", "vehicle": "string"})
    ''',
    "views.py": '''
        from entities import driver, route
        from granero import FeatureView, Field, FileSource
        from granero.definitions.aggregation import Aggregation

        def source(name):
            return FileSource(path=f"data/{name}", timestamp_field="event_timestamp",
                              created_timestamp_field="created")

        FUNCTIONS = {"fare": ["sum", "mean", "min", "max", "stddev", "first", "last"],
                     "tier": ["last", "distinct_count", "count"], "driver_id": ["count"]}
        driver_trips = FeatureView(
            entities=[driver], source=source("trips"), hop="10s",
            features=[Field(name="fare", dtype="float64"), Field(name="tier", dtype="string")],
            aggregations=[Aggregation(column=c, function=f, window=w)
                          for c, fs in FUNCTIONS.items() for f in fs for w in ("30s", "2m")],
        )
        route_eta = FeatureView(
            entities=[route], source=source("routes"), hop="10s",
            features=[Field(name="eta", dtype="float32"), Field(name="seen", dtype="timestamp")],
            aggregations=[Aggregation(column="eta", function="sum", window="30s"),
                          Aggregation(column="eta", function="max", window="2m"),
                          Aggregation(column="seen", function="max", window="2m"),
                          Aggregation(column="zone", function="count", window="2m", name="trips_2m")],
        )
        driver_stats = FeatureView(
            entities=[driver], source=source("stats"), ttl="1d",
            features=[Field(name="rating", dtype="float64")],
        )
    ''',
    "services.py": '''
        from views import driver_stats, driver_trips
        from granero import FeatureService
        mixed = FeatureService(features=[driver_stats, driver_trips[["fare_sum_30s", "tier_last_2m"]]])
    ''',
}


class Clocked(FeatureServingServicer):
    """Serves at the time the test sets."""

    now = BASE

    def now_micros(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[FeatureStore, ServerHandle]]:
    root = tmp_path_factory.mktemp("aggregates") / "repo"
    root.mkdir()
    url = redis_url.rsplit("/", 1)[0] + "/9"
    (root / "feature_store.yaml").write_text(
        f"project: aggregates\nonline_store: {{type: redis, url: '{url}', expire_keys: false}}\n")
    for name, source in DEFINITIONS.items():
        (root / name).write_text(textwrap.dedent(source))
    with FeatureStore(root) as store:
        store.apply()
        config = ServingConfig(port=0, metrics_port=None, max_workers=4)
        with build_server(store, config, servicer=Clocked(store, config)) as handle:
            yield store, handle


def driver_events(rng: random.Random) -> pa.Table:
    """Events on hop edges and at random, ties, nulls, late created times, 20 drivers."""
    rows = []
    for _ in range(150):
        ts = BASE + rng.randrange(-20, 1) * HOP + rng.choice([0, 1, HOP - 1, rng.randrange(HOP)])
        rows.append({"driver_id": rng.randrange(20), "event_timestamp": ts,
                     "created": rng.choice([None, ts, ts + 5 * HOP]),
                     "fare": rng.choice([None, 0.1, 0.2, 1e9, -0.0, 0.0, 3.5]),
                     "tier": rng.choice([None, "gold", "silver", ""])})
    return _table(rows, {"driver_id": pa.int64(), "fare": pa.float64(), "tier": pa.string()})


def route_events(rng: random.Random) -> pa.Table:
    rows = []
    for _ in range(80):
        ts = BASE + rng.randrange(-15, 1) * HOP + rng.choice([0, HOP - 1, rng.randrange(HOP)])
        rows.append({"zone": rng.choice([1, 12, -3]), "vehicle": rng.choice(["car", "c", "ar"]),
                     "event_timestamp": ts, "created": None,
                     "eta": rng.choice([None, 1.5, 2.25, -0.5]),
                     "seen": rng.choice([None, ts, BASE - 10**9])})
    return _table(rows, {"zone": pa.int32(), "vehicle": pa.string(), "eta": pa.float32(), "seen": "ts"})


def _table(rows: list[dict], types: dict) -> pa.Table:
    stamp = pa.timestamp("us", tz="UTC")
    columns = {}
    for name in rows[0]:
        kind = types.get(name, "ts")
        values = [r[name] for r in rows]
        columns[name] = (pa.array(values, pa.int64()).cast(stamp) if kind == "ts" else pa.array(values, kind))
    table = pa.table(columns)
    return table.rename_columns(["created_timestamp" if c == "created" else c for c in table.column_names])


def times(events: pa.Table) -> list[int]:
    newest = max(events["event_timestamp"].cast(pa.int64()).to_pylist())
    starts = {t - t % HOP for t in events["event_timestamp"].cast(pa.int64()).to_pylist()}
    crossings = {s + w + d for s in starts for w in WINDOWS for d in (-1, 0, HOP - 1)}
    return sorted(t for t in crossings | {newest, newest + 1} if t >= newest)


def bits(value):
    if isinstance(value, float):
        return struct.pack("<d", value)
    return to_micros(value) if isinstance(value, datetime) else value


def ask(stub, entities: list[dict], refs: list[str], layout: int) -> pb.GetOnlineFeaturesResponse:
    request = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=refs), layout=layout)
    if layout == pb.COLUMNS:
        for key, column in encode_key_columns({k: [e[k] for e in entities] for k in entities[0]}).items():
            request.entity_columns[key].CopyFrom(column)
    else:
        request.entities.extend(encode_entity_rows(entities))
    return stub.GetOnlineFeatures(request, timeout=30)


def training_at(store: FeatureStore, view_name: str, entities: list[dict], t: int, events: pa.Table) -> pa.Table:
    defs = store.registered()
    spec = aggregation_spec(defs, defs.feature_views[view_name])
    columns = {k: pa.array([e[k] for e in entities], events.schema.field(k).type) for k in spec.keys}
    columns["event_timestamp"] = pa.array([from_micros(t)] * len(entities), pa.timestamp("us", tz="UTC"))
    return aggregate_as_of(pa.table(columns), events, spec)


@pytest.mark.parametrize("seed", range(3))
def test_served_at_t_equals_training_at_t(served, seed):
    store, handle = served
    rng = random.Random(seed)
    defs = store.registered()
    cases = {"driver_trips": (driver_events(rng), [{"driver_id": d} for d in range(22)]),
             "route_eta": (route_events(rng), [{"zone": z, "vehicle": v} for z in (1, 12, -3, 5)
                                               for v in ("car", "c", "ar")])}
    with grpc.insecure_channel(handle.address) as channel:
        stub = FeatureServingStub(channel)
        for view_name, (events, entities) in cases.items():
            store.online_store.delete_view(view_name)  # another seed's newer stamps would win
            write_events(store.online_store, defs, defs.feature_views[view_name], events)
            names = defs.feature_views[view_name].output_names
            for t in times(events):
                handle.servicer.now = t
                offline = training_at(store, view_name, entities, t, events)
                for layout, asked in ((pb.ROWS, entities[:5]), (pb.ROWS, entities), (pb.COLUMNS, entities)):
                    response = ask(stub, asked, [f"{view_name}:*"], layout)
                    result = (decode_columns_response if layout == pb.COLUMNS else decode_result)(response)
                    for name, values in zip(names, result.values, strict=True):
                        want = offline[name].to_pylist()[: len(asked)]
                        assert [bits(v) for v in values] == [bits(v) for v in want], (view_name, name, t, layout)
                    statuses = {v.status for row in result.rows for v in row}
                    assert statuses <= {Status.PRESENT, Status.NULL_VALUE}
                    assert {v.event_timestamp for row in result.rows for v in row} == {from_micros(t)}


def test_a_service_mixes_plain_and_aggregate_views(served):
    store, handle = served
    defs = store.registered()
    events = driver_events(random.Random(7))
    store.online_store.delete_view("driver_trips")
    write_events(store.online_store, defs, defs.feature_views["driver_trips"], events)
    t = max(events["event_timestamp"].cast(pa.int64()).to_pylist())
    write_rows(store, "driver_stats", [{"driver_id": 3, "event_timestamp": from_micros(t), "rating": 4.5}])
    handle.servicer.now = t
    offline = training_at(store, "driver_trips", [{"driver_id": 3}, {"driver_id": 99}], t, events)
    with grpc.insecure_channel(handle.address) as channel:
        request = pb.GetOnlineFeaturesRequest(feature_service="mixed")
        request.entities.extend(encode_entity_rows([{"driver_id": 3}, {"driver_id": 99}]))
        result = decode_result(FeatureServingStub(channel).GetOnlineFeatures(request, timeout=30))
    assert result.to_dict() == {
        "driver_stats__rating": [4.5, None],
        "driver_trips__fare_sum_30s": offline["fare_sum_30s"].to_pylist(),
        "driver_trips__tier_last_2m": offline["tier_last_2m"].to_pylist(),
    }
    statuses = [[v.status for v in row] for row in result.rows]
    assert statuses[1][0] is Status.NOT_FOUND  # the plain view has no row; the aggregates do not care
    assert statuses[1][1] is Status.PRESENT and result.to_dict()["driver_trips__fare_sum_30s"][1] == 0.0
    assert statuses[1][2] is Status.NULL_VALUE
    in_process = store.get_online_features([{"driver_id": 3}, {"driver_id": 99}], feature_service="mixed",
                                           now=from_micros(t))
    assert in_process.to_dict() == result.to_dict()
    assert in_process.rows == result.rows
