"""What one request may ask for, checked before any work, and how long a message may grow.

A request that is over a limit is refused before it is decoded, planned or looked up, so its
cost is bounded by the limit rather than by what the client sent. Anything echoed back (in an
error's status message, which travels in a gRPC trailer with an ~8 KiB metadata limit) or
written to a log line goes through ``shorten``, so an 8 KB name or a 20 MB reference is never
copied whole. ``max_request_bytes`` is enforced by gRPC itself (RESOURCE_EXHAUSTED), the rest
here (INVALID_ARGUMENT naming the field).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from granero.errors import InvalidRequest

_CUT_NOTE = "... [{} more characters cut]"
_NOTE_ROOM = 48
"""UTF-8 bytes kept free for the cut note (it is at most ~40 ASCII characters)."""


class ServingLimits(BaseModel):
    """``serving.limits`` in feature_store.yaml."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=1000, ge=1)
    """Entity rows per GetOnlineFeatures request."""
    max_push_rows: int = Field(default=10_000, ge=1)
    """Rows per push (PushFeatures and ``FeatureStore.push``)."""
    max_refs: int = Field(default=1000, ge=1)
    """Feature references per request (a ``view:*`` counts once)."""
    max_name_length: int = Field(default=256, ge=8)
    """Characters in a requested feature reference, feature service, feature view or key
    column name."""
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request message (gRPC's max_receive_message_length): larger ones are refused
    with RESOURCE_EXHAUSTED before they are parsed."""
    max_error_bytes: int = Field(default=1000, ge=128, le=2000)
    """Longest status message sent back, in UTF-8 bytes. gRPC percent-encodes non-ASCII bytes
    (x3), so even 2000 stays under a client's 8 KiB metadata limit."""

    def check_name(self, field: str, name: str) -> None:
        """InvalidRequest naming ``field`` when ``name`` is longer than ``max_name_length``."""
        if len(name) > self.max_name_length:
            raise InvalidRequest(
                f"{field} is {len(name)} characters long, over serving.limits.max_name_length "
                f"{self.max_name_length}: {shorten(name, 80)!r}")

    def check_names(self, field: str, names: Sequence[str]) -> None:
        """``check_name`` of every name, as ``field[index]`` (one pass when all fit)."""
        if names and max(map(len, names)) > self.max_name_length:
            for index, name in enumerate(names):
                self.check_name(f"{field}[{index}]", name)

    def check_count(self, what: str, count: int, setting: str) -> None:
        """InvalidRequest when ``count`` exceeds the limit named ``setting``."""
        limit = getattr(self, setting)
        if count > limit:
            raise InvalidRequest(f"{count} {what} exceed serving.limits.{setting} {limit}")


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes: its head, then how many characters were cut.

    The one way Granero bounds what it echoes: status messages and log lines alike. Exact for
    ``limit`` >= 64 (the note needs its room).
    """
    if len(text) * 4 <= limit or len(text.encode()) <= limit:
        return text
    head = text.encode()[: max(limit - _NOTE_ROOM, 0)].decode(errors="ignore")
    return head + _CUT_NOTE.format(len(text) - len(head))
