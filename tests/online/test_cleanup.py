"""Online data of removed views (``online.cleanup``), on a real redis-server: ``apply`` drops what
a removed view left (its keys, freshness and stream progress) and nothing else; an apply that
cannot reach Redis still applies and says what it left; ``granero online prune`` finds and drops
it later, or only lists it with ``--dry-run``."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from granero.cli.main import app
from granero.errors import RegistryError
from granero.feature_store import FeatureStore
from granero.freshness.online_writes import online_event_times, record_online_write
from granero.freshness.stream_progress import progress_key

pytestmark = pytest.mark.redis

VIEWS = ("kept", "gone")


def write_repo(root: Path, url: str, views: tuple[str, ...]) -> None:
    root.mkdir(exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: {root.name}\nonline_store: {{type: redis, url: '{url}', socket_timeout_seconds: 0.5}}\n")
    body = "".join(
        f"{v} = FeatureView(entities=[driver], ttl='1d', source=FileSource(path='data/{v}', timestamp_field='ts'),"
        f" features=[Field(name='x', dtype='float64')])\n" for v in views)
    (root / "defs.py").write_text(textwrap.dedent("""
        from granero import Entity, FeatureView, Field, FileSource
        driver = Entity(join_keys={"driver_id": "int64"})
    """) + body)


def fill(client: redis.Redis, store: FeatureStore) -> None:
    """Rows, freshness and stream progress of both views, and a key of another project."""
    online = store.online_store
    for view in VIEWS:
        client.mset({f"{online.project}:{view}:row{i}".encode(): b"v" for i in range(30)})
        record_online_write(online, view, 1_700_000_000_000_000)
        client.hset(progress_key(online.project), view, b"{}")
    client.set(f"other{online.project}:gone:row".encode(), b"v")


def keys_of(client: redis.Redis, project: str, view: str) -> int:
    return len(list(client.scan_iter(match=f"{project}:{view}:*".encode())))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def repo(tmp_path: Path, redis_url: str) -> Path:
    root = tmp_path / f"p{tmp_path.name[-8:].replace('-', '_')}"
    write_repo(root, redis_url, VIEWS)
    return root


def test_apply_removing_a_view_drops_its_online_data_and_nothing_else(repo, redis_url):
    client = redis.Redis.from_url(redis_url)
    with FeatureStore(repo) as store:
        store.apply()
        fill(client, store)
        write_repo(repo, redis_url, ("kept",))
        plan, version = store.apply()
        project = store.config.project
        assert version is not None and plan.removed_views == ["gone"]
        assert plan.online.dropped == {"gone": 30} and plan.online.left == {}
        assert (keys_of(client, project, "gone"), keys_of(client, project, "kept")) == (0, 30)
        assert set(online_event_times(store.online_store)) == {"kept"}
        assert set(client.hkeys(progress_key(project))) == {b"kept"}
        assert client.exists(f"other{project}:gone:row".encode())  # another project's key: untouched
        plan, version = store.apply()  # nothing changed: nothing dropped
        assert version is None and plan.online is None


def test_an_apply_that_cannot_reach_redis_applies_and_prune_drops_what_it_left(repo, redis_url):
    client = redis.Redis.from_url(redis_url)
    with FeatureStore(repo) as store:
        store.apply()
        fill(client, store)
        project = store.config.project
    write_repo(repo, f"redis://127.0.0.1:{closed_port()}/0", ("kept",))
    with FeatureStore(repo) as store:
        plan, version = store.apply()
    assert version is not None and list(plan.online.left) == ["gone"] and plan.online.dropped == {}
    assert "gone" in plan.online.left and keys_of(client, project, "gone") == 30
    write_repo(repo, redis_url, ("kept",))
    runner = CliRunner()
    listed = runner.invoke(app, ["online", "prune", "--repo", str(repo), "--dry-run", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == {"dry_run": True, "dropped": {"gone": 0}, "left": {}}
    assert keys_of(client, project, "gone") == 30
    pruned = runner.invoke(app, ["online", "prune", "--repo", str(repo)])
    assert pruned.exit_code == 0 and "dropped view 'gone': 30 keys" in pruned.output, pruned.output
    assert (keys_of(client, project, "gone"), keys_of(client, project, "kept")) == (0, 30)
    again = runner.invoke(app, ["online", "prune", "--repo", str(repo)])
    assert "no online data of unregistered views" in again.output


def test_prune_before_any_apply_is_refused_and_drops_nothing(repo, redis_url):
    """An empty registry (a fresh checkout beside a shared Redis) would make every view of the
    project look unregistered: prune refuses instead of dropping them all."""
    client = redis.Redis.from_url(redis_url)
    with FeatureStore(repo) as store:
        fill(client, store)
        with pytest.raises(RegistryError, match="nothing applied yet"):
            store.prune_online()
        project = store.config.project
    result = CliRunner().invoke(app, ["online", "prune", "--repo", str(repo)])
    assert result.exit_code == 3, result.output
    assert (keys_of(client, project, "gone"), keys_of(client, project, "kept")) == (30, 30)
