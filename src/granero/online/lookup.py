"""Online lookups: validate the entity rows, read every (view, entity) in one round trip, decode.

A served value equals the training value of the same entity at ``now``: the store holds each
entity's latest row, and a row older than the view's ttl is withheld here, at read time, from its
stored event timestamp (Redis expiry only reclaims memory; it may lag or be switched off).

Statuses: NOT_FOUND (no row, a row written under an older schema of the view, or a row stamped
after ``now``: never served before its time, though the row valid at ``now`` is lost, since
materialization stops at now such a row only comes from a skewed clock or a hand-made write),
OUTSIDE_MAX_AGE (``now - event_timestamp > ttl``; value None), NULL_VALUE (the row holds null),
PRESENT. Entity rows are numbered from 0 in error messages; keys a view does not need are ignored.

An aggregate view's reader (``online.aggregate_lookup``) reads one member per entity and window
in the same round trip (``window_tiles``; ``_fetch`` splits the store's answer per view).

Two shapes of the same answer: ``read_views`` per entity row (the gRPC server's ROWS layout), and
``read_columns`` column-wise, join key columns in and a list per feature out (``lookup`` and the
COLUMNS layout); past a handful of rows it decodes each view with numpy in one pass.

``OnlineResult`` keeps that column-wise answer: a FeatureValue per value (2,000 objects for 100
entities x 20 features) made the garbage collector, which they trigger, scan every object of the
caller's process, the p99 of a lookup. ``rows`` still gives FeatureValues, built on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from granero.errors import GraneroError, InvalidRequest
from granero.online.encoding import (
    StoredRow,
    ValueCodec,
    batch_values,
    decode_batch,
    encode_entity_key,
    encode_single_keys,
    from_micros,
    to_micros,
    value_codec,
)
from granero.online.join_key_checks import EntityColumns, checked_key_column, checked_key_value, column_fits
from granero.online.redis import WindowRead

if TYPE_CHECKING:
    from granero.definitions.refs import ViewFeatures
    from granero.online.store import OnlineStore


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


COLUMN_STATUSES = (Status.PRESENT, Status.NOT_FOUND, Status.OUTSIDE_MAX_AGE)
"""What the codes in ``ViewColumns.status`` and ``OnlineResult.statuses`` stand for (0, 1, 2)."""
_COLUMN_CODE = {status: code for code, status in enumerate(COLUMN_STATUSES)}
_PRESENT_CODE, _NOT_FOUND_CODE = _COLUMN_CODE[Status.PRESENT], _COLUMN_CODE[Status.NOT_FOUND]
_VIEW_CODE = {**_COLUMN_CODE, Status.NULL_VALUE: _PRESENT_CODE}
"""A value's status -> its view's code (a null value's view row is PRESENT)."""


@dataclass(frozen=True)
class OnlineResult:
    """The answer per feature, column-wise (``to_dict`` builds no per-value object).

    A feature's value status is its view's (``statuses``), or NULL_VALUE where the view's is
    PRESENT and the value is None. The features of one view share their ``statuses`` and
    ``event_micros`` lists; results equal when they answer the same, however they were built.
    """

    feature_names: list[str]
    """``view__feature``, in request order."""
    values: list[list[Any]]
    """Per feature, per entity row (request order): the value, None where there is none."""
    statuses: list[list[int]]
    """Per feature, per entity row: its view's status, an index into COLUMN_STATUSES."""
    event_micros: list[list[int]]
    """Per feature, per entity row: the event time of its view's row (UTC micros; 0 when
    NOT_FOUND)."""

    @classmethod
    def from_rows(cls, feature_names: list[str], rows: Sequence[Sequence[FeatureValue]]
                  ) -> OnlineResult:
        """The result holding ``rows`` (per entity row, per feature), e.g. a ROWS response."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(feature_names)
        return cls(
            list(feature_names),
            [[v.value for v in column] for column in columns],
            [[_VIEW_CODE[v.status] for v in column] for column in columns],
            [[to_micros(v.event_timestamp) if v.event_timestamp else 0 for v in column]
             for column in columns],
        )

    def to_dict(self) -> dict[str, list[Any]]:
        """Column name -> values, one per entity row (``pandas.DataFrame(result.to_dict())``)."""
        return {name: list(column)
                for name, column in zip(self.feature_names, self.values, strict=True)}

    @cached_property
    def rows(self) -> list[list[FeatureValue]]:
        """Per entity row (request order), per feature: built on first use, one datetime per
        view and entity row."""
        times: dict[int, list[datetime | None]] = {}  # by id of a view's shared list
        columns = []
        for values, codes, micros in zip(
                self.values, self.statuses, self.event_micros, strict=True):
            if id(micros) not in times:
                times[id(micros)] = _event_times(codes, micros)
            columns.append(_feature_values(values, codes, times[id(micros)]))
        return [list(row) for row in zip(*columns, strict=True)]


def _event_times(codes: list[int], micros: list[int]) -> list[datetime | None]:
    return [None if code == _NOT_FOUND_CODE or not m else from_micros(m)  # 0: none (on-demand)
            for code, m in zip(codes, micros, strict=True)]


def _feature_values(
    values: list[Any], codes: list[int], times: list[datetime | None]
) -> list[FeatureValue]:
    return [
        FeatureValue(value, Status.NULL_VALUE if value is None and code == _PRESENT_CODE
                     else COLUMN_STATUSES[code], time)
        for value, code, time in zip(values, codes, times, strict=True)
    ]


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
    reads = read_columns(store, readers, rows_to_columns(readers, entity_rows), to_micros(now))
    values: list[list[Any]] = []
    statuses: list[list[int]] = []
    event_micros: list[list[int]] = []
    for reader, read in zip(readers, reads, strict=True):
        values += reader.served_values(read)
        statuses += [read.status] * len(read.values)
        event_micros += [read.event_micros] * len(read.values)
    names = [name for view in views for name in view.column_names()]
    return OnlineResult(names, values, statuses, event_micros)


def read_views(
    store: OnlineStore,
    readers: Sequence[ViewReader],
    entity_rows: Sequence[Mapping[str, Any]],
    now_micros: int,
) -> list[list[ViewRead]]:
    """Per entity row, per view: what ``lookup`` returns, before any datetime or FeatureValue is
    built (the gRPC server encodes these directly). Same validation and round trip as lookup."""
    keys = [[r.entity_key(i, row) for r in readers] for i, row in enumerate(entity_rows)]
    distinct = [list(dict.fromkeys(column)) for column in zip(*keys, strict=True)]  # read once
    if not distinct:
        return [[] for _ in keys]
    found = [
        dict(zip(view_keys, raws, strict=True))
        for view_keys, raws in zip(distinct, _fetch(store, readers, distinct, now_micros, True), strict=True)
    ]
    return [
        [reader.read(answers[key], now_micros) for reader, answers, key in zip(readers, found, row, strict=True)]
        for row in keys
    ]


def _fetch(
    store: OnlineStore, readers: Sequence[ViewReader], keys: Sequence[Sequence[bytes]], now_micros: int,
    per_key: bool = False,
) -> list[list[Any]]:
    """Per reader, the raw answer of its entity ``keys``, in one store round trip: per key the
    stored value of a plain view; per key, per window (``window_tiles``), the member of an
    aggregate view (one flat list, or a list per key when ``per_key``)."""
    tiles = [reader.window_tiles(now_micros) for reader in readers]
    gets = [(r.name, key) for r, ks, t in zip(readers, keys, tiles, strict=True) if not t for key in ks]
    windows = [WindowRead(r.name, ks, t) for r, ks, t in zip(readers, keys, tiles, strict=True) if t and ks]
    found = store.read(gets, windows) if windows else store.read(gets)
    out, plain, ranged = [], 0, len(gets)
    for view_keys, view_tiles in zip(keys, tiles, strict=True):
        if not view_tiles:
            out.append(found[plain : plain + len(view_keys)])
            plain += len(view_keys)
            continue
        width = len(view_tiles)
        members = found[ranged : ranged + width * len(view_keys)]
        ranged += len(members)
        out.append([members[i : i + width] for i in range(0, len(members), width)] if per_key else members)
    return out


ROW_BY_ROW_BELOW = 16
"""``read_columns`` decodes fewer entity rows than this one by one (struct), more with numpy:
numpy's fixed cost per call outweighs its gain per row for a handful of rows."""
_ZEROS = {"int32": 0, "int64": 0, "float32": 0.0, "float64": 0.0, "bool": False, "timestamp": 0}
"""What a column of a fixed-width dtype holds where it has no value."""


class ViewColumns(NamedTuple):
    """One view's answer for every entity row, column-wise (``read_columns``)."""

    status: list[int]
    """Per entity row: an index into COLUMN_STATUSES."""
    event_micros: list[int]
    """Per entity row: the event time of its row, 0 when NOT_FOUND."""
    values: list[list[Any]]
    """Per requested feature, per entity row: the value; where it has none, 0 for fixed-width
    dtypes (timestamps are int64 micros) and None for the others."""
    missing: list[list[int]]
    """Per requested feature: the entity rows without a value, because the status is not PRESENT
    or the row holds null (then the value's status is NULL_VALUE)."""


def read_columns(
    store: OnlineStore, readers: Sequence[ViewReader], columns: EntityColumns, now_micros: int
) -> list[ViewColumns]:
    """Per view, what ``read_views`` answers, column-wise: the same validation (InvalidRequest
    names the entity row, key and view) and one store round trip."""
    count = column_length(columns)
    keys = [reader.entity_keys(columns, count) for reader in readers]
    found = _fetch(store, readers, keys, now_micros)
    return [reader.read_columns(raw, now_micros) for reader, raw in zip(readers, found, strict=True)]


def column_length(columns: EntityColumns) -> int:
    """The number of entity rows (0 for no columns); InvalidRequest unless all columns agree."""
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        ordered = dict(sorted(lengths.items()))
        raise InvalidRequest(f"entity columns have different lengths: {ordered}")
    return next(iter(lengths.values()), 0)


def rows_to_columns(
    readers: Sequence[ViewReader], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """Entity rows as the join key columns the views need. A bad request fails as ``read_views``
    fails: InvalidRequest names the first bad row (rows in order, then views, then keys)."""
    keys = list(dict.fromkeys(key for reader in readers for key, _ in reader.join_keys))
    if all(type(row) is dict for row in rows):  # the common case: gathered, then checked in bulk
        try:
            columns = {key: [row[key] for row in rows] for key in keys}
        except KeyError:
            pass
        else:
            if all(column_fits(dtype, columns[key])
                   for reader in readers for key, dtype in reader.join_keys):
                return columns
    for index, row in enumerate(rows):
        for reader in readers:
            for key, dtype in reader.join_keys:
                checked_key_value(index, row, reader.name, key, dtype)
    return {key: [row[key] for row in rows] for key in keys}


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
        """The reader of ``view``'s requested features; an aggregate view's reads windows."""
        if view.view.is_aggregate:
            from granero.online.aggregate_lookup import AggregateReader

            return AggregateReader.of(view)
        features = tuple((f.name, f.dtype) for f in view.view.features)
        position = {name: i for i, (name, _) in enumerate(features)}
        return cls(
            view.view.name,
            tuple(view.join_keys.items()),
            value_codec(features),
            tuple(position[f] for f in view.features),
            view.view.ttl // timedelta(microseconds=1),
        )

    def window_tiles(self, now_micros: int) -> tuple[int, ...]:
        """The tile indexes an aggregate view reads from per entity; a plain view: none (GET)."""
        return ()

    def entity_key(self, index: int, row: Mapping[str, Any]) -> bytes:
        values = [
            checked_key_value(index, row, self.name, key, dtype) for key, dtype in self.join_keys
        ]
        return encode_entity_key([dtype for _, dtype in self.join_keys], values)

    def entity_keys(self, columns: EntityColumns, count: int) -> list[bytes]:
        """The entity key of every row of ``columns`` (checked like ``entity_key``)."""
        if not count:
            return []
        checked = [checked_key_column(columns, self.name, k, d) for k, d in self.join_keys]
        dtypes = [dtype for _, dtype in self.join_keys]
        fields = [encode_single_keys(d, c) for d, c in zip(dtypes, checked, strict=True)]
        if len(fields) == 1:
            return fields[0]
        return [b"".join(parts) for parts in zip(*fields, strict=True)]  # column by column

    def read_columns(self, raw: Sequence[bytes | None], now_micros: int) -> ViewColumns:
        """``read`` of every entity row at once."""
        if len(raw) < ROW_BY_ROW_BELOW:
            return self._columns_of_reads([self.read(value, now_micros) for value in raw])
        import numpy as np

        try:
            batch = decode_batch(self.codec, raw)
        except ValueError as error:
            raise GraneroError(
                f"online value of view {self.name!r} is unreadable: {error}"
            ) from None
        found = batch.found & (batch.event_micros <= now_micros)  # a future row: not yet there
        outside = found & (now_micros - batch.event_micros > self.ttl_micros)
        status = np.where(found, np.where(outside, 2, 0), 1)
        # withheld: a row older than the ttl serves no value, like a row never found
        missing = batch.nulls[:, self.wanted] | (status != 0)[:, None]
        values = batch_values(self.codec, batch, self.wanted, missing)
        gaps = ([np.flatnonzero(column).tolist() for column in missing.T] if missing.any()
                else [[] for _ in self.wanted])
        return ViewColumns(status.tolist(), np.where(found, batch.event_micros, 0).tolist(),
                           values, gaps)

    def _columns_of_reads(self, reads: list[ViewRead]) -> ViewColumns:
        """Row-by-row reads turned into columns (one transpose; nulls and times only if any)."""
        blank = self._blank
        rows = [blank if read.values is None else read.values for read in reads]
        values = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in blank]
        absent = [row for row, read in enumerate(reads) if read.values is None]
        missing = [absent] * len(blank)
        if any(None in read.values for read in reads if read.values is not None):
            missing = [sorted({*absent, *(r for r, v in enumerate(c) if v is None)})
                       for c in values]
            values = [[zero if v is None else v for v in column] if zero is not None else column
                      for column, zero in zip(values, blank, strict=True)]
        for k in self._timestamps:
            values[k] = [v if type(v) is int else to_micros(v) for v in values[k]]
        status = [_COLUMN_CODE[read.status] for read in reads]
        return ViewColumns(status, [read.event_micros or 0 for read in reads], values, missing)

    def served_values(self, read: ViewColumns) -> list[list[Any]]:
        """``read``'s columns as the library serves them: None where a value is missing, and
        timestamps as datetimes. Fills in ``read``'s own lists (``read_columns`` made them)."""
        columns = read.values
        for k in self._timestamps:
            columns[k] = [from_micros(micros) for micros in columns[k]]
        for column, missing in zip(columns, read.missing, strict=True):
            for row in missing:
                column[row] = None
        return columns

    @property
    def _blank(self) -> tuple[Any, ...]:
        """Per requested feature: what its column holds where there is no value."""
        return _blank_and_timestamps(self.codec, self.wanted)[0]

    @property
    def _timestamps(self) -> tuple[int, ...]:
        """Positions of the requested timestamp features (read as datetimes, sent as micros)."""
        return _blank_and_timestamps(self.codec, self.wanted)[1]

    def read(self, raw: bytes | None, now_micros: int) -> ViewRead:
        stored = None if raw is None else self._decode(raw)
        if stored is None or stored.event_micros > now_micros:  # a future row: not yet there
            return _ABSENT
        if now_micros - stored.event_micros > self.ttl_micros:
            return ViewRead(Status.OUTSIDE_MAX_AGE, stored.event_micros, None)
        return ViewRead(Status.PRESENT, stored.event_micros, stored.values)

    def values(self, read: ViewRead) -> list[FeatureValue]:
        """The read as the library's FeatureValues (one datetime per read, shared)."""
        if read.event_micros is None:
            return [_NOT_FOUND] * len(self.wanted)
        event = from_micros(read.event_micros) if read.event_micros else None  # 0: none, as on the wire
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


@lru_cache(maxsize=1024)
def _blank_and_timestamps(
    codec: ValueCodec, wanted: tuple[int, ...]
) -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """``ViewReader._blank`` and ``_timestamps``, once per request shape (``lookup`` builds its
    readers afresh on every call)."""
    dtypes = [codec.features[i][1] for i in wanted]
    timestamps = tuple(k for k, dtype in enumerate(dtypes) if dtype == "timestamp")
    return tuple(_ZEROS.get(dtype) for dtype in dtypes), timestamps
