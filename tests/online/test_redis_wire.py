"""The bytes RedisStore sends and how it reads the replies (``online.redis_wire``), against a real
redis-server: window reads packed from a template are the bytes hiredis packs; replies read from
the buffer equal redis-py's own reading, whatever their sizes, errors and push messages; a
lookup's window reads are plain ZRANGEs (no script) whose replies mostly skip ``read_response``.
"""

from __future__ import annotations

import random

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.online.redis import RedisSettings, RedisStore, WindowRead
from granero.online.redis_wire import BufferedReplies, pack, read_replies, window_read, window_reads
from tests.online.test_cluster import cluster_ports  # noqa: F401 (the module's cluster fixture)

pytestmark = pytest.mark.redis

binary = st.binary(max_size=40)


@given(prefix=binary, keys=st.lists(binary, max_size=20), tiles=st.lists(st.integers(-(2**62), 2**62), min_size=1,
                                                                          max_size=3))
def test_window_reads_are_the_bytes_hiredis_packs(prefix, keys, tiles):
    expected = b"".join(pack(window_read(prefix + key, tile)) for key in keys for tile in tiles)
    assert window_reads(prefix, keys, tiles) == expected


@given(prefix=binary, width=st.integers(0, 30), count=st.integers(0, 50), tile=st.integers(-(2**62), 2**62),
       seed=st.integers(0, 2**32))
def test_window_reads_of_keys_of_one_length_are_the_bytes_hiredis_packs(prefix, width, count, tile, seed):
    """The lookup's case (one tile, fixed-width keys, e.g. int64 join keys): one ``join``, with
    the key bytes anywhere in 0..255 (CR, LF and '$' included)."""
    rng = random.Random(seed)
    keys = [bytes(rng.randrange(256) for _ in range(width)) for _ in range(count)]
    expected = b"".join(pack(window_read(prefix + key, tile)) for key in keys)
    assert window_reads(prefix, keys, [tile]) == expected


def commands_and_oracle(client: redis.Redis, rng: random.Random, count: int) -> list[list[bytes]]:
    """``count`` random commands over a few keys: replies nil, empty and one-member arrays,
    bulk strings from 0 bytes to past redis-py's 64 KiB socket read (a reply spanning reads),
    integers, and WRONGTYPE errors."""
    client.flushdb()
    client.zadd("z", {bytes(rng.randrange(256) for _ in range(rng.choice((1, 200, 70_000)))): 1})
    client.set("s", b"v" * rng.choice((0, 10, 100_000)))
    shapes = [
        [b"GET", b"s"], [b"GET", b"missing"], [b"MGET", b"s", b"missing", b"z"], [b"INCR", b"n"],
        list(window_read(b"z", 5)), list(window_read(b"z", 0)), list(window_read(b"s", 5)),
        list(window_read(b"missing", 5)), [b"ZRANGE", b"z", b"0", b"-1"],
    ]
    return [rng.choice(shapes) for _ in range(count)]


def replies_one_by_one(connection, count: int) -> list:
    out = []
    for _ in range(count):
        try:
            out.append(connection.read_response())
        except redis.ResponseError as error:
            out.append(error)
    return out


def comparable(replies: list) -> list:
    return [("error", str(r)) if isinstance(r, Exception) else r for r in replies]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), count=st.integers(1, 300))
def test_buffered_replies_equal_redis_pys_own_reading(online_url, seed, count):
    client = redis.Redis.from_url(online_url.rsplit("/", 1)[0] + "/3")
    rng = random.Random(seed)
    commands = commands_and_oracle(client, rng, count)
    payload = b"".join(map(pack, commands))
    connection = client.connection_pool.get_connection()
    try:
        assert BufferedReplies.of(connection) is not None  # the installed redis-py has the reader
        client.delete("n")
        connection.send_packed_command([payload])
        expected = comparable(replies_one_by_one(connection, count))
        client.delete("n")
        connection.send_packed_command([payload])
        assert comparable(read_replies(connection, count)) == expected
        connection.send_command("PING")
        assert connection.read_response() in (b"PONG", "PONG")  # still in step
    finally:
        client.connection_pool.release(connection)
        client.close()


def test_push_messages_between_replies_are_handed_to_redis_py(online_url):
    """RESP3 (redis-py's default): an invalidation push arriving amid the replies is no reply;
    the replies keep their order and the connection stays in step."""
    client = redis.Redis.from_url(online_url.rsplit("/", 1)[0] + "/3", protocol=3)
    connection = client.connection_pool.get_connection()
    try:
        client.set("tracked", b"1")
        connection.send_command("CLIENT", "TRACKING", "ON")
        assert connection.read_response() in (b"OK", "OK")
        commands = [[b"GET", b"tracked"], [b"SET", b"tracked", b"2"], *([[b"GET", b"tracked"]] * 50)]
        connection.send_packed_command([b"".join(map(pack, commands))])
        replies = read_replies(connection, len(commands))
        assert replies == [b"1", b"OK", *[b"2"] * 50]
        connection.send_command("PING")
        assert connection.read_response() in (b"PONG", "PONG")
    finally:
        connection.send_command("CLIENT", "TRACKING", "OFF")
        connection.read_response()
        client.connection_pool.release(connection)
        client.close()


def test_many_buffered_replies_skip_read_response(online_url):
    """The point of the module: 1,000 small replies cost a handful of ``read_response`` calls
    (one per socket read), not one each."""
    client = redis.Redis.from_url(online_url)
    connection = client.connection_pool.get_connection()
    calls = []
    original = connection.read_response
    connection.read_response = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        connection.send_packed_command([pack([b"PING"]) * 1000])
        assert read_replies(connection, 1000) == [b"PONG"] * 1000
        assert 1 <= len(calls) < 50
    finally:
        del connection.read_response
        client.connection_pool.release(connection)
        client.close()


def test_window_reads_are_plain_zranges_in_the_mgets_payload(own_redis):
    """No script (a Lua ``redis.call`` per key cost Redis ~3x the command): one MGET and one
    ZRANGE per entity; a key of another type reads as an empty member."""
    store = RedisStore(RedisSettings(own_redis.url, expire_keys=False), "p")
    client = redis.Redis.from_url(own_redis.url)
    prefix = store._prefix("agg")
    client.zadd(prefix + b"a", {b"m1": "-inf", b"m5": 5})
    client.set(prefix + b"s", b"plain")
    client.config_resetstat()
    found = store.read([("plain", b"x")], [WindowRead("agg", [b"a", b"s", b"none", b"a"], [4])])
    assert found == [None, b"m1", b"", None, b"m1"]
    assert store.read([], [WindowRead("agg", [b"a"], [5])]) == [b"m5"]
    stats = client.info("commandstats")
    handshake = ("cmdstat_config", "cmdstat_hello", "cmdstat_client")
    assert {name for name in stats if not name.startswith(handshake)} == {"cmdstat_mget", "cmdstat_zrange"}
    assert (stats["cmdstat_mget"]["calls"], stats["cmdstat_zrange"]["calls"]) == (1, 5)
    store.close()


@pytest.mark.slow
def test_cluster_reads_map_wrongtype_like_standalone(cluster_ports):  # noqa: F811
    """On a Cluster, one GET or ZRANGE per key (redis-py routes them per node): a key of another
    type reads as a standalone MGET or window read answers it, never failing the request."""
    store = RedisStore(RedisSettings(f"redis://127.0.0.1:{cluster_ports[1]}/0", cluster=True), "p")
    client = redis.RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    prefix = store._prefix("agg")
    keys = [b"k%d" % i for i in range(30)]
    for i, key in enumerate(keys):
        if i % 3 == 0:
            client.zadd(prefix + key, {b"first": "-inf", b"later": 10})
        elif i % 3 == 1:
            client.set(prefix + key, b"plain row")
    try:
        found = store.read([], [WindowRead("agg", keys, [9]), WindowRead("agg", keys[:3], [10])])
        assert found == [[b"first", b"", None][i % 3] for i in range(30)] + [b"later", b"", None]
        rows = [[None, b"plain row", None][i % 3] for i in range(30)]  # a sorted set read as a row: absent
        assert store.read([("agg", key) for key in keys]) == rows
        assert store.read([("agg", key) for key in keys], [WindowRead("agg", keys[:3], [9])]) == [
            *rows, b"first", b"", None]
    finally:
        store.close()
        client.close()
