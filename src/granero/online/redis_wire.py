"""The bytes RedisStore sends and the replies it reads back: commands packed in the Redis protocol
(RESP) and many replies read at C speed. No policy here (what to read, what an error means to a
caller): ``online.redis`` decides that and translates every redis error.

Why by hand: a lookup of 100 aggregate entities sends 100 window reads. Packing each with
redis-py costs more Python than Redis spends serving it, and so does reading each reply through
redis-py's ``read_response`` (~5-8 us per reply); a Lua script looping over the keys saves the
replies but costs Redis ~3x per key (every ``redis.call`` sets up a call of its own). So the
window reads are plain commands, packed from one template, and their replies are taken from
redis-py's hiredis reader once buffered.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import islice
from typing import Any, NamedTuple

WINDOW_READ = (b"ZRANGE", b"<key>", b"<tile>", b"-inf", b"BYSCORE", b"REV", b"LIMIT", b"0", b"1")
"""The command of one window read: the last member of the key's sorted set scored at or before
the tile (the change point in force then, ``online.aggregate_encoding``). A key holding no
sorted set (a row of the view's plain definition) answers WRONGTYPE, read as an empty member:
another definition's, so NOT_FOUND, never a failed request."""
_WINDOW_HEAD = b"*%d\r\n$6\r\nZRANGE\r\n$" % len(WINDOW_READ)


def pack(command: Sequence[bytes]) -> bytes:
    """A command in RESP: an array of bulk strings (packed by hiredis, in C)."""
    import hiredis

    return hiredis.pack_command(tuple(command))


def window_read(key: bytes, tile: int) -> tuple[bytes, ...]:
    """``WINDOW_READ`` of one key at one tile, as arguments."""
    return (WINDOW_READ[0], key, b"%d" % tile, *WINDOW_READ[3:])


def window_reads(prefix: bytes, keys: Sequence[bytes], tiles: Sequence[int]) -> bytes:
    """``pack(window_read(prefix + key, tile))`` per key and tile (key major), from a template:
    a ``pack`` per key cost more than the bytes themselves. Keys of one length (any fixed-width
    join keys) and one tile, the lookup's case, take one ``bytes.join`` in C."""
    tails = [b"\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in window_read(b"", t)[2:])
             for t in tiles]
    lengths = set(map(len, keys))
    if len(tails) == 1 and len(lengths) == 1:
        head = _WINDOW_HEAD + b"%d\r\n" % (len(prefix) + lengths.pop()) + prefix
        return head + (tails[0] + head).join(keys) + tails[0]
    parts: list[bytes] = []
    for key in keys:
        size = b"%d\r\n" % (len(prefix) + len(key))
        for tail in tails:
            parts += (_WINDOW_HEAD, size, prefix, key, tail)
    return b"".join(parts)


def last_members(replies: Sequence[Any]) -> list[bytes | None]:
    """Per ``WINDOW_READ`` reply: its one member, None for none, b"" for WRONGTYPE (a key
    holding no sorted set). Any other error raises."""
    return [r[0] if type(r) is list and r else _no_member(r) for r in replies]


def _no_member(reply: Any) -> bytes | None:
    if isinstance(reply, Exception):
        if str(reply).startswith("WRONGTYPE"):
            return b""
        raise reply
    return None


def read_replies(connection: Any, count: int) -> list[Any]:
    """``count`` replies (errors as values) of a payload sent on a redis-py connection. Those
    already buffered are taken from its hiredis reader directly; any other through
    ``read_response``, which waits on the socket with its timeout and raises its errors."""
    buffered = BufferedReplies.of(connection)
    replies: list[Any] = []
    while len(replies) < count:
        replies.append(_read_one(connection))
        if buffered is not None:
            replies += buffered.take(count - len(replies))
    return replies


class BufferedReplies(NamedTuple):
    """The replies buffered in a redis-py connection's hiredis reader. Reaches into redis-py's
    parser (a test fails if an upgrade moves it); push messages (RESP3) go to the parser's own
    handler, as ``read_response`` sends them, and are no replies."""

    reader: Any
    incomplete: Any
    """What the reader returns while a reply is incomplete."""
    push: Any
    """hiredis' class of push messages."""
    handle_push: Any

    @classmethod
    def of(cls, connection: Any) -> BufferedReplies | None:
        """None where the connection has no such reader: read reply by reply then (slower, the
        same replies)."""
        parser = getattr(connection, "_parser", None)
        reader, handle = getattr(parser, "_reader", None), getattr(parser, "handle_push_response", None)
        incomplete, push = _hiredis_markers()
        if not hasattr(reader, "gets") or handle is None or push is None:
            return None
        return cls(reader, incomplete, push, handle)

    def take(self, most: int) -> list[Any]:
        """Up to ``most`` replies complete in the buffer, without touching the socket: taken in
        one C loop (``iter`` until the incomplete marker), push messages picked out after."""
        replies = list(islice(iter(self.reader.gets, self.incomplete), most))
        if self.push not in map(type, replies):
            return replies
        for push in (reply for reply in replies if type(reply) is self.push):
            self.handle_push(push)
        return [reply for reply in replies if type(reply) is not self.push]


@cache
def _hiredis_markers() -> tuple[Any, Any]:
    """(redis-py's marker of an incomplete reply, hiredis' push message class), None where
    either is missing."""
    try:
        import hiredis
        from redis._parsers.hiredis import NOT_ENOUGH_DATA
    except ImportError:
        return None, None
    return NOT_ENOUGH_DATA, getattr(hiredis, "PushNotification", None)


def _read_one(connection: Any) -> Any:
    from redis.exceptions import ResponseError

    try:
        return connection.read_response()
    except ResponseError as error:
        return error
