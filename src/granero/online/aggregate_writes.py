"""Writing an aggregate view's entities to Redis: each entity's sorted set rewritten whole.

One Lua script does, per entity key, atomically: compare the stamp of the stored members with the
new one, and unless the stored one is newer, DEL the key, ZADD every member (score = its change
point's tile index, ``-inf`` for the first) and PEXPIREAT. Whole rewrites make a write idempotent
(the same events give the same members, byte for byte) and let a recomputation drop points of an
older state; nothing is ever incremented, so a backfill or a retried task never counts an event
twice.

The stamp (``aggregate_encoding``: bytes 9-24 of every member) is the entity's newest event time,
then the greatest created time of the events the values were computed from. A stored stamp that
is greater wins: a computation from an older state of the offline table (a slow concurrent sync)
never overwrites one that saw a newer event or a later-created (late) event. An equal stamp
overwrites, so a corrected re-run lands. Stamps are compared only between members of the same
schema: after a definition change the new values always replace the old ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

WRITE_ENTITIES_IF_NEWER = """
local written, at = 0, 1
for _, key in ipairs(KEYS) do
  local expire_at, count = ARGV[at], tonumber(ARGV[at + 1])
  local first, after = at + 2, at + 2 + 2 * count
  at = after
  local older = false
  if redis.call('TYPE', key).ok == 'zset' then
    local stored, new = redis.call('ZRANGE', key, 0, 0)[1], ARGV[first + 1]
    if stored and #stored >= 29 and string.sub(stored, 26, 29) == string.sub(new, 26, 29) then
      local old_event, old_created = struct.unpack('<i8i8', stored, 10)
      local new_event, new_created = struct.unpack('<i8i8', new, 10)
      older = new_event < old_event or (new_event == old_event and new_created < old_created)
    end
  end
  if not older then
    redis.call('DEL', key)
    for i = first, after - 1, 1000 do
      redis.call('ZADD', key, unpack(ARGV, i, math.min(i + 999, after - 1)))
    end
    if expire_at ~= '' then
      redis.call('PEXPIREAT', key, expire_at)
    end
    written = written + 1
  end
end
return written
"""
"""KEYS: entity keys; ARGV per key: expire-at unix ms ('' for never), the member count n, then n
(score, member) pairs. Returns how many entities were written (the others held a newer stamp)."""

MEMBERS_PER_CALL = 5000
"""Members per script call on a standalone server (an entity is never split): enough to amortize
the call, short enough that a concurrent lookup waits at most a few milliseconds."""


class AggregateEntity(NamedTuple):
    """One entity's new state: its entity key, members (``aggregate_encoding.encode_members``,
    oldest change point first, at least one), their scores (``b"-inf"`` or a tile index) and
    expiry (unix ms, None for never)."""

    key: bytes
    members: Sequence[bytes]
    scores: Sequence[bytes]
    expire_at_ms: int | None


def write_calls(prefix: bytes, entities: Sequence[AggregateEntity], per_call: int) -> Iterator[list[bytes]]:
    """EVAL commands writing ``entities``: up to ``per_call`` members each (one entity per call
    when ``per_call`` is 0, as a Cluster needs: a script keeps to one slot)."""
    keys: list[bytes] = []
    arguments: list[bytes] = []
    members = 0
    for entity in entities:
        if keys and members + len(entity.members) > per_call:
            yield _call(keys, arguments)
            keys, arguments, members = [], [], 0
        keys.append(prefix + entity.key)
        arguments += [b"" if entity.expire_at_ms is None else b"%d" % entity.expire_at_ms, b"%d" % len(entity.members)]
        for score, member in zip(entity.scores, entity.members, strict=True):
            arguments += [score, member]
        members += len(entity.members)
    if keys:
        yield _call(keys, arguments)


def _call(keys: list[bytes], arguments: list[bytes]) -> list[bytes]:
    return [b"EVAL", _SCRIPT, b"%d" % len(keys), *keys, *arguments]


_SCRIPT = WRITE_ENTITIES_IF_NEWER.encode()
