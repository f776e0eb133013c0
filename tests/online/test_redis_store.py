"""RedisStore against a real redis-server: write-if-newer, per-view expiry, one-round-trip reads,
errors translated at the edge, and recovery once Redis is back."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import redis
from pydantic import ValidationError

from granero.config import load_config
from granero.errors import ConfigError, OnlineStoreUnavailable
from granero.online.encoding import encode_entity_key, key_prefix, read_version, to_micros
from granero.online.redis import RedisConfig, RedisSettings, RedisStore
from granero.online.sync import write_rows
from tests.conftest import free_port

pytestmark = pytest.mark.redis


def key(driver_id: int) -> bytes:
    return encode_entity_key(["int64"], [driver_id])


def stored_version(store: RedisStore, view: str, driver_id: int):
    raw = store.read([(view, key(driver_id))])[0]
    return raw and read_version(raw)


def row(driver_id: int, event: datetime, created: datetime | None = None, **features):
    return {
        "driver_id": driver_id,
        "event_timestamp": event,
        "created_timestamp": created,
        **features,
    }


def raw_client(store: RedisStore) -> redis.Redis:
    return redis.Redis.from_url(store.settings.url)


def test_older_rows_never_overwrite_and_equal_versions_do(replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    t = datetime(2026, 1, 7, tzinfo=UTC)
    assert write_rows(replay_store, view, keys, [row(1, t, t, conv_rate=0.5)]) == 1
    assert (
        write_rows(replay_store, view, keys, [row(1, t - timedelta(seconds=1), t, conv_rate=0.1)])
        == 0
    )
    assert (
        write_rows(replay_store, view, keys, [row(1, t, t - timedelta(seconds=1), conv_rate=0.2)])
        == 0
    )
    assert (
        write_rows(replay_store, view, keys, [row(1, t, None, conv_rate=0.3)]) == 0
    )  # null created is lowest
    assert (
        write_rows(replay_store, view, keys, [row(1, t, t, conv_rate=0.6)]) == 1
    )  # a corrected re-run lands
    assert stored_version(replay_store, "stats", 1) == (to_micros(t), to_micros(t))
    assert (
        write_rows(
            replay_store, view, keys, [row(1, t + timedelta(microseconds=1), None, conv_rate=0.7)]
        )
        == 1
    )
    assert stored_version(replay_store, "stats", 1) == (to_micros(t) + 1, None)


def test_concurrent_writers_leave_the_newest_version(online_url, project, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    base = datetime(2026, 1, 7, tzinfo=UTC)
    versions = [
        (base + timedelta(seconds=s), base + timedelta(seconds=c))
        for s in range(6)
        for c in range(3)
    ]

    def writer(seed: int) -> None:
        store = RedisStore(RedisSettings(online_url, expire_keys=False), project, batch_size=50)
        shuffled = random.Random(seed).sample(versions, len(versions))
        rows = [row(d, e, c, trips=seed) for e, c in shuffled for d in range(40)]
        write_rows(store, view, keys, rows)
        store.close()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    newest = (to_micros(versions[-1][0]), to_micros(versions[-1][1]))
    store = RedisStore(RedisSettings(online_url), project)
    assert {stored_version(store, "stats", d) for d in range(40)} == {newest}


def test_each_view_expires_after_its_own_ttl(store, defs):
    now = datetime.now(UTC)
    event = now - timedelta(minutes=5)
    for name in ("stats", "daily"):
        view = defs.feature_views[name]
        assert write_rows(store, view, defs.join_keys(view), [row(7, event)]) == 1
    client = raw_client(store)
    ttl_ms = {
        name: client.pttl(key_prefix(store.project, name) + key(7)) for name in ("stats", "daily")
    }
    expected = {"stats": timedelta(hours=1), "daily": timedelta(days=2)}
    for name, ttl in expected.items():
        remaining = (event + ttl - now) / timedelta(milliseconds=1)
        assert remaining - 5_000 < ttl_ms[name] <= remaining + 1, (name, ttl_ms[name], remaining)


def test_rows_already_past_their_ttl_are_not_written(store, defs):
    view = defs.feature_views["stats"]
    old = datetime.now(UTC) - timedelta(hours=1, seconds=1)
    assert write_rows(store, view, defs.join_keys(view), [row(8, old, conv_rate=1.0)]) == 0
    assert store.read([("stats", key(8))]) == [None]


def test_without_key_expiry_rows_stay(replay_store, defs):
    view = defs.feature_views["stats"]
    assert (
        write_rows(
            replay_store, view, defs.join_keys(view), [row(9, datetime(2020, 1, 1, tzinfo=UTC))]
        )
        == 1
    )
    assert raw_client(replay_store).pttl(key_prefix(replay_store.project, "stats") + key(9)) == -1


def test_expiry_is_refreshed_by_a_newer_row(store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    now = datetime.now(UTC)
    write_rows(store, view, keys, [row(10, now - timedelta(minutes=50))])
    write_rows(store, view, keys, [row(10, now - timedelta(minutes=1))])
    remaining = raw_client(store).pttl(key_prefix(store.project, "stats") + key(10))
    assert remaining > timedelta(minutes=58) / timedelta(milliseconds=1)


def test_read_is_one_mget_round_trip(own_redis, defs):
    store = RedisStore(RedisSettings(own_redis.url, expire_keys=False), "p")
    view = defs.feature_views["stats"]
    write_rows(
        store,
        view,
        defs.join_keys(view),
        [row(d, datetime(2026, 1, 1, tzinfo=UTC)) for d in range(5)],
    )
    client = redis.Redis.from_url(own_redis.url)
    client.config_resetstat()
    values = store.read([("stats", key(d)) for d in range(10)])
    stats = client.info("commandstats")
    assert [v is not None for v in values] == [True] * 5 + [False] * 5
    assert stats["cmdstat_mget"]["calls"] == 1
    assert {name for name in stats if not name.startswith("cmdstat_config")} == {"cmdstat_mget"}


def test_delete_view_removes_only_that_view(replay_store, defs):
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for name in ("stats", "daily"):
        view = defs.feature_views[name]
        write_rows(replay_store, view, defs.join_keys(view), [row(d, t) for d in range(3)])
    assert replay_store.delete_view("stats") == 3
    assert replay_store.read([("stats", key(0)), ("daily", key(0))])[0] is None
    assert replay_store.read([("daily", key(d)) for d in range(3)]).count(None) == 0


def test_flushed_scripts_are_loaded_again(replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    write_rows(replay_store, view, keys, [row(1, t)])
    raw_client(replay_store).script_flush()
    assert write_rows(replay_store, view, keys, [row(1, t + timedelta(seconds=1))]) == 1


def test_redis_down_is_unavailable_then_recovers_by_itself(own_redis, defs):
    store = RedisStore(
        RedisSettings(own_redis.url, socket_timeout_seconds=0.5, expire_keys=False), "p"
    )
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert write_rows(store, view, keys, [row(1, t)]) == 1
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(
        OnlineStoreUnavailable, match=rf"127.0.0.1:{own_redis.port}.*reading 1 keys"
    ):
        store.read([("stats", key(1))])
    with pytest.raises(OnlineStoreUnavailable, match="writing view 'stats'"):
        write_rows(store, view, keys, [row(1, t)])
    assert time.monotonic() - started < 2  # fails fast: one retry, no backoff
    own_redis.start()  # same port, empty (no persistence): scripts must be loaded again
    assert store.read([("stats", key(1))]) == [None]
    assert write_rows(store, view, keys, [row(1, t)]) == 1
    store.close()


SECRET = "Zq9@Wx8/Kp7?Jm6#Hn5%25:Lr4"
"""A password holding every URL delimiter; no piece of it may show in any message."""
PIECES = ["Zq9", "Wx8", "Kp7", "Jm6", "Hn5", "Lr4"]


def shows_no_secret(text: str) -> bool:
    return not any(piece in text for piece in PIECES)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{quote(SECRET, safe='')}@127.0.0.1:1/0",
        f"redis://user:{quote(SECRET, safe='')}@127.0.0.1:1/0",
        f"redis://127.0.0.1:1/0?password={quote(SECRET, safe='')}",
        "redis://:Zq9@Wx8@127.0.0.1:1/0",  # a raw '@': redis-py splits at the last one
    ],
)
def test_unavailable_errors_never_show_the_password(url):
    settings = RedisSettings(url, socket_timeout_seconds=0.2)
    with pytest.raises(OnlineStoreUnavailable) as caught:
        RedisStore(settings, "p").read([("v", b"k")])
    assert shows_no_secret(str(caught.value)) and "***" in str(caught.value)
    assert shows_no_secret(repr(settings)) and "127.0.0.1:1" in str(caught.value)


@pytest.mark.parametrize("raw", ["Zq9/Wx8", "Zq9?Wx8", "Zq9#Wx8", "123/Zq9Wx8"])
def test_an_unencoded_delimiter_in_the_password_is_a_config_error_without_it(raw):
    """redis-py misreads such a URL: it failed with a traceback quoting the password's start
    (or connected to a port made of its digits)."""
    url = f"redis://:{raw}@127.0.0.1:6379/0"
    with pytest.raises(ConfigError, match=r"online_store.url redis://:\*\*\*@.*percent-encode") as caught:
        RedisStore(RedisSettings(url), "p").read([("v", b"k")])
    assert "Zq9" not in str(caught.value)
    with pytest.raises(ValidationError) as invalid:
        RedisConfig(url=url)
    assert "Zq9" not in str(invalid.value) and "Wx8" not in str(invalid.value)


def test_the_config_file_names_the_field_and_hides_the_secret(tmp_path):
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nonline_store: {type: redis, url: 'redis://:Zq9/Wx8@127.0.0.1:6379/0'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "feature_store.yaml" in message and "url" in message and "percent-encode" in message
    assert "Zq9" not in message and "Wx8" not in message
    assert shows_no_secret(repr(RedisConfig(url=f"redis://:{quote(SECRET, safe='')}@h:1/0")))


def test_the_cli_exit_7_message_hides_a_query_password(tmp_path):
    from typer.testing import CliRunner

    from granero.cli.main import app
    from tests.serving.conftest import write_repo

    url = f"redis://127.0.0.1:{free_port()}/0?password={quote(SECRET, safe='')}"
    repo = write_repo(tmp_path / "repo", url)
    (repo / "feature_store.yaml").write_text(
        (repo / "feature_store.yaml").read_text().replace("expire_keys: false", "socket_timeout_seconds: 0.2")
    )
    assert CliRunner().invoke(app, ["apply", "-r", str(repo)]).exit_code == 0
    result = CliRunner().invoke(
        app, ["get-online", "-r", str(repo), "-f", "driver_stats:trips", "-e", "driver_id=1"]
    )
    assert result.exit_code == 7, result.output
    assert "password=***" in result.stderr and shows_no_secret(result.output + result.stderr)


def test_invalid_yaml_on_the_url_line_is_located_without_quoting_it(tmp_path):
    """PyYAML's messages quote the offending line, password included: only line and column."""
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nonline_store: {type: redis, url: redis://:Zq9: Wx8@127.0.0.1:6379/0}\n"
    )
    with pytest.raises(ConfigError, match=r"feature_store.yaml: invalid YAML at line 2, column \d+") as caught:
        load_config(tmp_path)
    assert shows_no_secret(str(caught.value))
