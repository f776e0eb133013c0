"""PushFeatures over a real gRPC server on 127.0.0.1 and a real redis-server: served at once,
the same checks and errors as in process, limits, and the ``push`` permission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from granero.access.config import AccessConfig
from granero.access.tokens import TokensConfig, new_token, token_digest
from granero.errors import InvalidRequest, NotFound, PermissionDenied
from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.limits import ServingLimits
from granero.serving.server import build_server
from tests.push.conftest import at, write_push_repo
from tests.push.test_push import FEATURES, landing_files, redis_snapshot, row

PERMISSIONS = '''
from granero import Permission
pushers = Permission(principals=["pusher"], actions=["push"], feature_views=["driver_stats"])
readers = Permission(principals=["pusher", "reader"], actions=["read_online"], feature_views=["*"])
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory, push_url) -> Iterator[tuple[FeatureStore, Client]]:
    repo = write_push_repo(tmp_path_factory.mktemp("grpc") / "repo", push_url)
    with FeatureStore(repo) as store:
        store.apply()
        config = ServingConfig(port=0, metrics_port=0, limits=ServingLimits(max_push_rows=2000))
        with build_server(store, config) as handle, Client(handle.address, timeout=60) as client:
            yield store, client


def test_a_value_pushed_over_grpc_is_served_at_once(served) -> None:
    store, client = served
    result = client.push("driver_stats", [row(11, 30, conv_rate=0.625, trips=4, tier="x")], batch_id="g1")
    assert (result.rows, result.online_rows, result.batch_id) == (1, 1, "g1")
    values = client.get_online_features([{"driver_id": 11}], FEATURES).to_dict()
    assert values == {"driver_stats__conv_rate": [0.625], "driver_stats__trips": [4],
                      "driver_stats__tier": ["x"]}
    again = client.push("driver_stats", [row(11, 30, conv_rate=0.625, trips=4, tier="x")], batch_id="g1")
    assert again.online_rows == 1  # rewritten with the same bytes, landed once
    assert len([p for p in landing_files(store) if "driver_stats" in str(p)]) == 1


def test_a_thousand_rows_over_grpc(served) -> None:
    _, client = served
    rows = [row(1000 + d, 40, conv_rate=d / 4, trips=d, tier=None) for d in range(1000)]
    assert client.push("driver_stats", rows).online_rows == 1000
    values = client.get_online_features({"driver_id": [1000, 1999]}, ["driver_stats:trips"]).to_dict()
    assert values == {"driver_stats__trips": [0, 999]}


@pytest.mark.parametrize(("rows", "message"), [
    ([row(21, 1), row(22, 1, trips=2**33)], "columns?.*'trips'.*row 1"),
    ([row(21, 1) | {"speed": 1}], "unknown column.*'speed'"),
    ([row(21, 1), row(None, 1)], "'driver_id'.*row 1"),
])
def test_invalid_rows_are_invalid_argument_and_write_nothing(served, rows, message) -> None:
    store, client = served
    before, files = redis_snapshot(store), landing_files(store)
    with pytest.raises(InvalidRequest, match=message):
        client.push("driver_stats", rows)
    assert redis_snapshot(store) == before and landing_files(store) == files


def test_limits_and_unknown_views(served) -> None:
    _, client = served
    with pytest.raises(InvalidRequest, match="holds 2001 values, over max_push_rows 2000"):
        client.push("driver_stats", [row(d, 1) for d in range(2001)])
    with pytest.raises(NotFound, match="'nope'"):
        client.push("nope", [row(1, 1)])
    with pytest.raises(InvalidRequest, match="to must be one of"):
        client.push("driver_stats", [row(1, 1)], to="nowhere")


def test_push_needs_the_push_permission(tmp_path: Path, push_url: str) -> None:
    """The interceptor requires ``push`` on the named view; the facade checks it too."""
    repo = write_push_repo(tmp_path / "repo", push_url)
    (repo / "permissions.py").write_text(PERMISSIONS)
    tokens = {"pusher": new_token(), "reader": new_token()}
    (tmp_path / "tokens.yaml").write_text(json.dumps({"tokens": [
        {"name": n, "sha256": token_digest(t), "roles": []} for n, t in tokens.items()]}))
    access = AccessConfig(authentication=[TokensConfig(file=str(tmp_path / "tokens.yaml"))])
    with FeatureStore(repo) as store:
        store.apply()
        with pytest.raises(PermissionDenied, match="may not push feature view 'driver_stats'"):
            store.push("driver_stats", [row(1, 1)])  # the local user holds no grant
        with build_server(store, ServingConfig(port=0, metrics_port=0), access=access) as handle:
            with Client(handle.address, token=tokens["reader"]) as reader, \
                    pytest.raises(PermissionDenied, match="may not push"):
                reader.push("driver_stats", [row(1, 1)])
            with Client(handle.address, token=tokens["pusher"]) as pusher:
                with pytest.raises(PermissionDenied, match="may not push feature view 'driver_trips'"):
                    pusher.push("driver_trips", [{"driver_id": 1, "event_timestamp": at(1), "fare": 1.0}])
                assert landing_files(store) == []
                assert pusher.push("driver_stats", [row(1, 1, conv_rate=0.5)]).online_rows == 1
                assert pusher.get_online_features([{"driver_id": 1}], ["driver_stats:conv_rate"]
                                                  ).to_dict() == {"driver_stats__conv_rate": [0.5]}
