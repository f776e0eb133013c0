"""Online lookups: validate the entity rows, read every (view, entity) in one round trip, decode.

A served value equals the training value of the same entity at ``now``: the store holds each
entity's latest row, and a row older than the view's ttl is withheld here, at read time, from its
stored event timestamp (Redis expiry only reclaims memory; it may lag or be switched off).

Statuses: NOT_FOUND (no row, or a row written under an older schema of the view),
OUTSIDE_MAX_AGE (``now - event_timestamp > ttl``; value None), NULL_VALUE (the row holds null),
PRESENT. Entity rows are numbered from 0 in error messages; keys a view does not need are ignored.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from granero.errors import GraneroError, InvalidRequest
from granero.online.encoding import (
    StoredRow,
    ValueCodec,
    encode_entity_key,
    from_micros,
    to_micros,
    value_codec,
)

if TYPE_CHECKING:
    from granero.definitions.refs import ViewFeatures
    from granero.online.store import OnlineStore

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class Status(StrEnum):
    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"
    NULL_VALUE = "NULL_VALUE"


@dataclass(frozen=True, slots=True)
class FeatureValue:
    value: Any
    """int, float, bool, str, bytes, datetime (UTC), a list of those, or None."""
    status: Status
    event_timestamp: datetime | None


@dataclass(frozen=True)
class OnlineResult:
    feature_names: list[str]
    """``view__feature``, in request order."""
    rows: list[list[FeatureValue]]
    """Per entity row (request order), per feature."""

    def to_dict(self) -> dict[str, list[Any]]:
        """Column name -> values, one per entity row (``pandas.DataFrame(result.to_dict())``)."""
        return {
            name: [row[i].value for row in self.rows] for i, name in enumerate(self.feature_names)
        }


_NOT_FOUND = FeatureValue(None, Status.NOT_FOUND, None)


def lookup(
    store: OnlineStore,
    views: list[ViewFeatures],
    entity_rows: Sequence[Mapping[str, Any]],
    now: datetime,
) -> OnlineResult:
    """The requested features of every entity row, as of ``now``, in one store round trip.

    Every row is validated before anything is read (InvalidRequest names the row, key and view).
    """
    readers = [ViewReader.of(view) for view in views]
    reads = read_views(store, readers, entity_rows, to_micros(now))
    rows = [
        [value for reader, read in zip(readers, row, strict=True) for value in reader.values(read)]
        for row in reads
    ]
    return OnlineResult([name for view in views for name in view.column_names()], rows)


def read_views(
    store: OnlineStore,
    readers: Sequence[ViewReader],
    entity_rows: Sequence[Mapping[str, Any]],
    now_micros: int,
) -> list[list[ViewRead]]:
    """Per entity row, per view: what ``lookup`` returns, before any datetime or FeatureValue is
    built (the gRPC server encodes these directly). Same validation and round trip as lookup."""
    keys = [[(r.name, r.entity_key(i, row)) for r in readers] for i, row in enumerate(entity_rows)]
    wanted = list(dict.fromkeys(key for row in keys for key in row))  # each key read once
    found = dict(zip(wanted, store.read(wanted), strict=True))
    return [
        [reader.read(found[key], now_micros) for reader, key in zip(readers, row, strict=True)]
        for row in keys
    ]


class ViewRead(NamedTuple):
    """One view's answer for one entity: NOT_FOUND and OUTSIDE_MAX_AGE carry no values; PRESENT
    carries the requested features' values (None where the row holds null)."""

    status: Status
    event_micros: int | None
    values: list[Any] | None


_ABSENT = ViewRead(Status.NOT_FOUND, None, None)


@dataclass(frozen=True)
class ViewReader:
    """How to look up and decode one view's requested features (build once per request shape)."""

    name: str
    join_keys: tuple[tuple[str, str], ...]
    codec: ValueCodec
    wanted: tuple[int, ...]
    ttl_micros: int

    @classmethod
    def of(cls, view: ViewFeatures) -> ViewReader:
        features = tuple((f.name, f.dtype) for f in view.view.features)
        position = {name: i for i, (name, _) in enumerate(features)}
        return cls(
            view.view.name,
            tuple(view.join_keys.items()),
            value_codec(features),
            tuple(position[f] for f in view.features),
            view.view.ttl // timedelta(microseconds=1),
        )

    def entity_key(self, index: int, row: Mapping[str, Any]) -> bytes:
        values = [
            checked_key_value(index, row, self.name, key, dtype) for key, dtype in self.join_keys
        ]
        return encode_entity_key([dtype for _, dtype in self.join_keys], values)

    def read(self, raw: bytes | None, now_micros: int) -> ViewRead:
        stored = None if raw is None else self._decode(raw)
        if stored is None:
            return _ABSENT
        if now_micros - stored.event_micros > self.ttl_micros:
            return ViewRead(Status.OUTSIDE_MAX_AGE, stored.event_micros, None)
        return ViewRead(Status.PRESENT, stored.event_micros, stored.values)

    def values(self, read: ViewRead) -> list[FeatureValue]:
        """The read as the library's FeatureValues (one datetime per read, shared)."""
        if read.event_micros is None:
            return [_NOT_FOUND] * len(self.wanted)
        event = from_micros(read.event_micros)
        if read.values is None:
            return [FeatureValue(None, read.status, event)] * len(self.wanted)
        return [
            FeatureValue(v, Status.NULL_VALUE if v is None else Status.PRESENT, event)
            for v in read.values
        ]

    def _decode(self, raw: bytes) -> StoredRow | None:
        try:
            return self.codec.decode(raw, self.wanted)
        except ValueError as error:
            raise GraneroError(
                f"online value of view {self.name!r} is unreadable: {error}"
            ) from None


def checked_key_value(index: int, row: Mapping[str, Any], view: str, key: str, dtype: str) -> Any:
    """``row[key]`` when it is a valid ``dtype`` join key value, else InvalidRequest."""
    if type(row) is not dict and not isinstance(row, Mapping):  # dict: skips the abc check
        raise InvalidRequest(
            f"entity row {index}: must map join key names to values, got {type(row).__name__}"
        )
    if key not in row:
        raise InvalidRequest(f"entity row {index}: missing join key {key!r} of view {view!r}")
    value = row[key]
    problem = _type_problem(dtype, value)
    if problem is not None:
        raise InvalidRequest(
            f"entity row {index}: join key {key!r} of view {view!r} must be {dtype}, "
            f"got {_describe(value)}{problem}"
        )
    return value


def _type_problem(dtype: str, value: Any) -> str | None:
    """None when ``value`` fits ``dtype``; else a suffix for the message ('' when none helps)."""
    if dtype in _INT_RANGE:
        plain = type(value) is int  # skips the slow abc check on the hot path
        if not plain and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
            return ""
        low, high = _INT_RANGE[dtype]
        return None if low <= value <= high else f" (outside the {dtype} range {low}..{high})"
    expected = {"bool": bool, "string": str, "bytes": (bytes, bytearray), "timestamp": datetime}[
        dtype
    ]
    return None if isinstance(value, expected) else ""


def _describe(value: Any) -> str:
    return "None" if value is None else f"{type(value).__name__} {value!r}"
