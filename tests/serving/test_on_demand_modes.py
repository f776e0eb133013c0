"""Both transform modes answer alike online: a row-mode view and a vectorized view handing their
inputs back, over every scalar dtype and a list, read from a real Redis (rows with nulls, a stale
row, absent entities) with request values of every dtype, at 0, 1 and many entity rows, in
process and over gRPC (both layouts). The row mode's request path builds no Arrow array
(``on_demand.rows``); the vectorized one is the path training's oracle tests hold to the offline
values, so equal answers carry that guarantee over to row mode.
"""

from __future__ import annotations

import math
import random
import textwrap
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.server import build_server
from tests.conftest import scaled
from tests.serving.conftest import write_rows

pytestmark = pytest.mark.redis

SCALARS = {"i32": "int32", "i64": "int64", "f32": "float32", "f64": "float64", "flag": "bool",
           "text": "string", "blob": "bytes", "at": "timestamp", "nums": "list<float32>"}
REQUEST = {"r_i64": "int64", "r_f32": "float32", "r_text": "string", "r_at": "timestamp",
           "r_ids": "list<int32>"}
NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUT = scaled(10)


def definitions() -> str:
    features = ", ".join(f'Field(name="{n}", dtype="{d}")' for n, d in SCALARS.items())
    request = ", ".join(f'Field(name="{n}", dtype="{d}")' for n, d in REQUEST.items())
    outputs = ", ".join(f'Field(name="o_{n}", dtype="{d}")' for n, d in {**SCALARS, **REQUEST}.items())
    return textwrap.dedent(f'''
        from granero import Entity, FeatureView, Field, FileSource
        from granero.definitions import OnDemandFeatureView, RequestSource

        driver = Entity(join_keys={{"driver_id": "int64"}})
        stats = FeatureView(entities=[driver], ttl="1h", features=[{features}],
                            source=FileSource(path="data/stats", timestamp_field="event_timestamp"))
        req = RequestSource(name="req", fields=[{request}])

        def echo_columns(columns):
            return {{"o_" + name: column for name, column in columns.items()}}

        def echo_row(row):
            return {{"o_" + name: value for name, value in row.items()}}

        vectorized = OnDemandFeatureView(inputs=[stats, req], features=[{outputs}],
                                         transform=echo_columns)
        rowwise = OnDemandFeatureView(inputs=[stats, req], features=[{outputs}],
                                      transform=echo_row, mode="row")
    ''')


def value(rng: random.Random, dtype: str):
    if rng.random() < 0.2:
        return None
    moment = NOW - timedelta(days=rng.randint(0, 9000), microseconds=rng.randint(0, 10**6))
    return {"int32": lambda: rng.randint(-(2**31), 2**31 - 1),
            "int64": lambda: rng.randint(-(2**63), 2**63 - 1),
            "float32": lambda: rng.choice([0.5, -1.25, 3.0e38, math.inf]),
            "float64": lambda: rng.choice([0.1, -2.5e300, math.nan, 0.0]),
            "bool": lambda: rng.random() < 0.5, "string": lambda: rng.choice(["", "a", "été"]),
            "bytes": lambda: rng.choice([b"", b"\x00x"]), "timestamp": lambda: moment,
            "list<float32>": lambda: rng.choice([[], [1.5, None], [0.25]]),
            "list<int32>": lambda: rng.choice([[], [1, None, -7]]),
            }[dtype]()


@pytest.fixture(scope="module")
def modes_store(tmp_path_factory, redis_url):
    root = tmp_path_factory.mktemp("modes") / "repo"
    root.mkdir()
    url = redis_url.rsplit("/", 1)[0] + "/15"
    (root / "feature_store.yaml").write_text(
        f"project: on_demand_modes\nonline_store: {{type: redis, url: '{url}', expire_keys: false}}\n")
    (root / "definitions.py").write_text(definitions())
    rng = random.Random(13)
    rows = [{"driver_id": i, "event_timestamp": NOW - timedelta(hours=2 if i == 3 else 0, minutes=1),
             **{n: value(rng, d) for n, d in SCALARS.items()}} for i in range(1, 25)]
    with FeatureStore(root) as store:
        store.apply()
        write_rows(store, "stats", rows)
        yield store


def request(rng: random.Random, count: int) -> tuple[list[dict], dict[str, list]]:
    entities = [{"driver_id": rng.randint(1, 30)} for _ in range(count)]  # 25-30: absent
    return entities, {n: [value(rng, d) for _ in range(count)] for n, d in REQUEST.items()}


def answers(result, prefix: str) -> list:
    """Per entity row, per output: (value, status, event time), NaN made comparable."""
    return [[(repr(v.value) if isinstance(v.value, float) else v.value, v.status, v.event_timestamp)
             for name, v in zip(result.feature_names, row, strict=True) if name.startswith(prefix)]
            for row in result.rows]


@pytest.mark.parametrize("count", [0, 1, 2, 17])
def test_row_mode_answers_as_the_vectorized_mode_in_process(modes_store, count):
    rng = random.Random(count)
    for _ in range(5):
        entities, values = request(rng, count)
        result = modes_store.get_online_features(entities, ["vectorized:*", "rowwise:*"],
                                                 request_data=values, now=NOW)
        assert answers(result, "rowwise__") == answers(result, "vectorized__")


@pytest.mark.parametrize("per_row", [False, True])
def test_row_mode_answers_as_the_vectorized_mode_over_grpc(modes_store, per_row):
    """Request values as columns (``request_columns``) or per entity row (``request_values``)."""
    config = ServingConfig(port=0, metrics_port=0, max_workers=2)
    rng = random.Random(7)
    with build_server(modes_store, config) as handle, Client(handle.address, timeout=TIMEOUT) as client:
        for count in (1, 9):
            entities, values = request(rng, count)
            sent = [{n: column[i] for n, column in values.items()} for i in range(count)] \
                if per_row else values
            try:
                result = client.get_online_features(entities, features=["vectorized:*", "rowwise:*"],
                                                    request_data=sent)
            except grpc.RpcError as error:  # a failure names what went wrong
                pytest.fail(f"{error.code()}: {error.details()}")
            assert answers(result, "rowwise__") == answers(result, "vectorized__")
            assert any(v[1].name == "PRESENT" for row in answers(result, "rowwise__") for v in row)
