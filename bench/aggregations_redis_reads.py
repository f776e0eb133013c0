"""What redis-server itself spends on one 100-entity read, per way an aggregate view could store
its entities: the floor under the online lookup's goal (issue 12: 12 aggregates within 1.5x of a
12-feature plain view, in process at 100 entities).

    .venv/bin/python -m bench.aggregations_redis_reads [--requests 2000] [--entities 10000]

A private redis-server holds, per entity, a sorted set of 41 members of 120 bytes (what the
aggregate view stores: one member per change point) and string values of 120 B (a plain view's
row), 480 B, 1,200 B and 4,800 B (what a key holding 4, 10 or 40 change points would hold).
Each request reads 100 random entities, sent pipelined on one raw socket and parsed by hiredis,
so the client adds almost nothing; the printed figure is redis-server's CPU time per request
(``/proc/<pid>/schedstat``), the median of ``--rounds`` rounds, beside the client's wall time.

The rows:
- ``ZRANGE`` per entity: how lookups read an aggregate view (the member in force at t);
- ``GET`` per entity; one ``MGET`` of 100 keys: how a plain view is read;
- ``MGET`` of larger values: a layout whose key per (entity, time bucket) holds several points;
- ``MGET`` with missing keys beside: a layout reading several keys per entity, most absent;
- a Lua script that MGETs per-entity strings and binary-searches them for the point in force.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.redis_server import private_redis, redis_version

MEMBERS = 41
SIZES = (120, 480, 1200, 4800)
LUA_PICK = b"""
local values = redis.call('MGET', unpack(KEYS))
local now, out = tonumber(ARGV[1]), {}
for i, v in ipairs(values) do
  out[i] = false
  if v then
    local n = struct.unpack('<I2', v)
    local low, high = 1, n
    while low < high do
      local middle = math.floor((low + high + 1) / 2)
      if struct.unpack('<i4', v, 3 + 4 * (middle - 1)) <= now then low = middle else high = middle - 1 end
    end
    local start = 3 + 4 * n + 120 * (low - 1)
    out[i] = string.sub(v, start, start + 119)
  end
end
return out
"""


def fill(client, entities: int) -> None:
    """Every layout's keys for ``entities`` entities."""
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    for entity in range(entities):
        key = struct.pack(">q", entity)
        members = {struct.pack(">q", j) + rng.randbytes(112): j * 100 for j in range(MEMBERS)}
        pipe.zadd(b"z:" + key, members)
        for size in SIZES:
            pipe.set(b"s%d:" % size + key, rng.randbytes(size))
        tiles = sorted(rng.sample(range(10_000), MEMBERS))
        pipe.set(b"L:" + key, struct.pack(f"<H{MEMBERS}i", MEMBERS, *tiles) + rng.randbytes(120 * MEMBERS))
        if entity % 500 == 499:
            pipe.execute()
    pipe.execute()


def payloads(sha: str) -> dict[str, tuple[Callable[[list[bytes]], bytes], int]]:
    """Per row: how a request for 100 entity keys is packed, and how many replies it gets."""
    import hiredis

    def pack(*commands: tuple[bytes, ...]) -> bytes:
        return b"".join(hiredis.pack_command(c) for c in commands)

    rows: dict[str, tuple[Callable[[list[bytes]], bytes], int]] = {
        "100 ZRANGE ... BYSCORE REV LIMIT 0 1 (the aggregate view's read)": (
            lambda keys: pack(*((b"ZRANGE", b"z:" + k, b"2000", b"-inf", b"BYSCORE", b"REV", b"LIMIT", b"0", b"1")
                                for k in keys)), 100),
        "100 GET of 120 B": (lambda keys: pack(*((b"GET", b"s120:" + k) for k in keys)), 100),
    }
    for size in SIZES:
        rows[f"MGET of 100 keys x {size} B" + (" (the plain view's read)" if size == 120 else "")] = (
            lambda keys, size=size: pack((b"MGET", *(b"s%d:" % size + k for k in keys))), 1)
    for missing in (1, 2):
        rows[f"MGET of 100 keys x 480 B + {100 * missing} missing keys"] = (
            lambda keys, missing=missing: pack((b"MGET", *with_missing(keys, missing))), 1)
    rows["Lua: one MGET of 100 x 5 KB, binary search per entity"] = (
        lambda keys: pack((b"EVALSHA", sha.encode(), b"100", *(b"L:" + k for k in keys), b"5000")), 1)
    return rows


def with_missing(keys: list[bytes], missing: int) -> list[bytes]:
    """Per entity its 480-byte key, then ``missing`` keys that do not exist."""
    return [part for key in keys for part in (b"s480:" + key, *(b"absent%d:" % m + key for m in range(missing)))]


class RawConnection:
    """One socket, replies parsed by hiredis: next to nothing of the client's in the way."""

    def __init__(self, port: int) -> None:
        import hiredis

        self.socket = socket.create_connection(("127.0.0.1", port))
        self.reader = hiredis.Reader()

    def roundtrip(self, payload: bytes, replies: int) -> None:
        self.socket.sendall(payload)
        got = 0
        while got < replies:
            self.reader.feed(self.socket.recv(1 << 20))
            while self.reader.gets() is not False:
                got += 1


def server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as stats:
        return int(stats.read().split()[0]) / 1e9


def measure(connection: RawConnection, pid: int, requests: list[bytes], replies: int) -> tuple[float, float]:
    """(redis-server CPU us, client wall us) per request."""
    for payload in requests[:100]:
        connection.roundtrip(payload, replies)
    cpu, wall = server_cpu(pid), time.perf_counter()
    for payload in requests:
        connection.roundtrip(payload, replies)
    return (server_cpu(pid) - cpu) / len(requests) * 1e6, (time.perf_counter() - wall) / len(requests) * 1e6


def main() -> None:
    import redis

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, private_redis(Path(folder) / "redis") as port:
        client = redis.Redis(port=port)
        fill(client, options.entities)
        pid = int(client.info("server")["process_id"])
        rows = payloads(client.script_load(LUA_PICK))
        rng = random.Random(11)
        asked = [[struct.pack(">q", e) for e in rng.sample(range(options.entities), 100)]
                 for _ in range(options.requests)]
        connection = RawConnection(port)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(options.rounds):  # round robin: a slow spell of the machine slows every row
            for name, (make, replies) in rows.items():
                results[name].append(measure(connection, pid, [make(keys) for keys in asked], replies))
    print(f"redis-server {redis_version()}, {options.entities:,} entities, 100 per request, "
          f"{options.requests} requests x {options.rounds} rounds (medians)")
    print("| read of 100 entities | redis-server CPU us / request | client wall us / request |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        cpu, wall = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"| {name} | {cpu:,.0f} | {wall:,.0f} |")


if __name__ == "__main__":
    main()
