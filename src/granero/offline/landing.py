"""Landed rows: offline rows that arrive outside a batch source (pushes, stream micro-batches).

They wait here, durable, until a materialization of their window unions them with the source rows
(so re-materializing a window never loses them). Layout, beside the offline tables
(``landing_location``: ``<offline path>_landing``, a sibling, so no view name can collide)::

    <location>/<view>/<batch key>.parquet   one file per write (the key: a hash of the batch id)
    <location>/<view>/_landed.log           the batch keys in landing order, one per line, each
                                            with its file's first and last event time (us)
    <location>/<view>/_lock                 serialises the view's writers (and landed_since)

Rows are in offline-table form (join keys, ``event_timestamp``, ``created_timestamp``, features,
typed like the table; no ``event_date``); the caller validated and typed them. Guarantees:

- a write is atomic and durable (temp file + rename, file and folder fsynced): readers see a
  whole file or none, and a write that returned survives a crash;
- a write is idempotent by ``batch_id``: the data file's name is the id's key, so the same id
  again writes nothing;
- ``landed_since`` resumes from a marker, the number of log lines it has read: under the lock, a
  write appends its key to the log (fsynced) before it renames its data file, and a reader counts
  a key only once its file exists. A write killed between the two leaves a key without a file,
  which no reader counts; its retry appends the key again. Three fsyncs per write in all.

Each file's smallest and largest event time are on its log line (and in its Parquet metadata,
which lines written before the log held them are read from), so readers skip files outside a
window without opening them: a stream lands a file per micro-batch, several a second, and
opening every footer made each materialization slower by the day. Writes need no Spark (the serving path pushes);
``read_landed`` is the Spark reader for materialization. Local file systems only, like the
Parquet tables' swaps (the lock and renames need POSIX semantics).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from granero.atomic_files import atomic_write, exclusive_lock
from granero.errors import ConfigError, InvalidRequest
from granero.offline.schema import EVENT_TIMESTAMP
from granero.registry import Interval
from granero.registry.intervals import add_interval

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

_LOG = "_landed.log"
_LOCK = "_lock"
_SUFFIX = ".parquet"
_FIRST_EVENT = b"granero.landing.first_event_us"
_LAST_EVENT = b"granero.landing.last_event_us"
_BATCH_ID = b"granero.landing.batch_id"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def landing_location(offline_path: str) -> str:
    """The landing folder of an offline store at ``offline_path``: its sibling ``<path>_landing``."""
    return f"{offline_path.rstrip('/')}_landing"


def write_landed(location: str, view: str, rows: pa.Table, batch_id: str) -> None:
    """Land ``rows`` (offline-table form) for ``view`` as one file; nothing if ``batch_id`` landed
    already, or if there are no rows."""
    if not batch_id:
        raise InvalidRequest(f"landing rows of view {view!r}: batch_id must not be empty")
    if rows.num_rows == 0:
        return
    first, last = _event_micros(rows, view)
    data = _parquet_bytes(rows, batch_id, first, last)
    folder = _view_folder(location, view)
    folder.mkdir(parents=True, exist_ok=True)
    key = batch_key(batch_id)
    with _locked(folder):
        if (folder / f"{key}{_SUFFIX}").is_file():
            return
        _append_line(folder / _LOG, f"{key} {first} {last}")  # first: a reader counts it once its file exists
        atomic_write(folder / f"{key}{_SUFFIX}", data)


def batch_key(batch_id: str) -> str:
    """A file-name-safe, fixed-length key for any batch id."""
    return hashlib.sha256(batch_id.encode()).hexdigest()[:32]


def read_landed_arrow(location: str, view: str, interval: Interval | None) -> pa.Table | None:
    """The view's landed rows with event time in ``interval`` (all when None), read in process;
    None when there are none. Files written before a feature was added read it as null."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(path) for path in _files_of(location, view, interval)]
    if not tables:
        return None
    rows = pa.concat_tables(tables, promote_options="default")
    if interval is not None:
        event = rows[EVENT_TIMESTAMP]
        inside = pc.and_(pc.greater_equal(event, interval.start), pc.less(event, interval.end))
        rows = rows.filter(inside)
    return rows if rows.num_rows else None


def read_landed(
    spark: SparkSession, location: str, view: str, interval: Interval | None
) -> DataFrame | None:
    """``read_landed_arrow`` as a lazy Spark DataFrame (schemas merged), for materialization;
    None when no landed file touches ``interval``."""
    from pyspark.sql import functions as F

    files = [str(path) for path in _files_of(location, view, interval)]
    if not files:
        return None
    rows = spark.read.option("mergeSchema", "true").parquet(*files)
    if interval is None:
        return rows
    event = F.col(EVENT_TIMESTAMP)
    return rows.where((event >= F.lit(interval.start)) & (event < F.lit(interval.end)))


def landed_since(location: str, view: str, marker: str | None) -> tuple[list[Interval], str | None]:
    """The event-time windows touched by files landed after ``marker`` (merged, sorted), and the
    marker to pass next time (``marker`` itself when nothing landed since; None: from the start;
    a marker this module did not make counts as None: everything is reported again)."""
    folder = _view_folder(location, view)
    if not (folder / _LOG).is_file():
        return [], marker
    with _locked(folder):  # no write between reading the log and checking its files
        entries = _entries(folder)
        start = int(marker) if marker and marker.isdigit() and int(marker) <= len(entries) else 0
        landed = _landed(folder, entries[start:])
    windows: list[Interval] = []
    for entry in landed:
        windows = add_interval(windows, _window(folder, entry))
    return windows, (str(len(entries)) if len(entries) > start else marker)


def log_length(location: str, view: str) -> int:
    """How many lines the view's landing log holds (0 before any landing)."""
    folder = _view_folder(location, view)
    if not (folder / _LOG).is_file():
        return 0
    with _locked(folder):
        return len((folder / _LOG).read_text().splitlines())


def files_of_lines(location: str, view: str, start: int, end: int) -> list[Path]:
    """The data files that log lines ``[start, end)`` stand for, in log order: a key counts at
    its last line, and only once its file exists.

    The same range gives the same files whenever it is asked, however the log grew since, so a
    reader that split the log into ranges reads every file in exactly one range: a key gets a
    second line only from a retry of a write killed before its rename, and a retry finds no file
    (else it writes nothing), so that key's file did not exist when its earlier range was read,
    and counts at its later line. Writers keep the lock from their line to their rename, so no
    write is halfway while the log is read here."""
    folder = _view_folder(location, view)
    if not (folder / _LOG).is_file():
        return []
    with _locked(folder):
        keys = [entry.key for entry in _entries(folder)]
        last_line = {key: line for line, key in enumerate(keys)}
        chosen = [folder / f"{key}{_SUFFIX}" for line, key in enumerate(keys[start:end], start)
                  if last_line[key] == line]
        return [path for path in chosen if path.is_file()]


def view_folder(location: str, view: str) -> Path:
    """The view's folder under the landing ``location`` (local file systems only)."""
    return _view_folder(location, view)


def file_window(path: Path) -> Interval:
    """[first event, last event + 1 us) of a landed file, from its metadata alone."""
    return _micros_window(*_event_range(path))


def _micros_window(first: int, last: int) -> Interval:
    return Interval(start=_EPOCH + first * _MICROSECOND, end=_EPOCH + (last + 1) * _MICROSECOND)


def _files_of(location: str, view: str, interval: Interval | None) -> list[Path]:
    """The view's data files, in landing order, that may hold rows of ``interval`` (by their log
    lines' event times; all files when None)."""
    folder = _view_folder(location, view)
    if not (folder / _LOG).is_file():
        return []
    landed = _landed(folder, _entries(folder))
    if interval is not None:
        landed = [entry for entry in landed if _overlaps(_window(folder, entry), interval)]
    return [_path(folder, entry) for entry in landed]


def _overlaps(window: Interval, interval: Interval) -> bool:
    return window.start < interval.end and interval.start < window.end


@dataclass(frozen=True)
class _LogEntry:
    """One line of ``_landed.log``: a file's key and, on lines that hold it, its event range."""

    key: str
    micros: tuple[int, int] | None


def _entries(folder: Path) -> list[_LogEntry]:
    return [_entry(line) for line in (folder / _LOG).read_text().splitlines()]


def _entry(line: str) -> _LogEntry:
    """A line: ``<key> <first us> <last us>``; a key alone (written before lines held the range,
    or cut short by a crash: such a key names no file) has no range."""
    key, *rest = line.split(" ")
    if len(rest) == 2 and all(part.lstrip("-").isdigit() for part in rest):
        return _LogEntry(key, (int(rest[0]), int(rest[1])))
    return _LogEntry(key, None)


def _landed(folder: Path, entries: list[_LogEntry]) -> list[_LogEntry]:
    """Each key once (its last line: the write that made its file), in first-line order, if its
    file exists."""
    latest = {entry.key: entry for entry in entries}
    return [latest[key] for key in dict.fromkeys(e.key for e in entries) if _path(folder, latest[key]).is_file()]


def _path(folder: Path, entry: _LogEntry) -> Path:
    return folder / f"{entry.key}{_SUFFIX}"


def _window(folder: Path, entry: _LogEntry) -> Interval:
    """The entry's event window, from its line, or from its file's footer for an older line."""
    return file_window(_path(folder, entry)) if entry.micros is None else _micros_window(*entry.micros)


def _event_range(path: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return int(metadata[_FIRST_EVENT]), int(metadata[_LAST_EVENT])


def _parquet_bytes(rows: pa.Table, batch_id: str, first: int, last: int) -> bytes:
    """The file's bytes: rows with timestamps in microseconds, and their event time range."""
    import pyarrow.parquet as pq

    metadata = {**(rows.schema.metadata or {}), _FIRST_EVENT: str(first).encode(),
                _LAST_EVENT: str(last).encode(), _BATCH_ID: batch_id.encode()}
    buffer = io.BytesIO()
    pq.write_table(rows.replace_schema_metadata(metadata), buffer, coerce_timestamps="us")
    return buffer.getvalue()


def _event_micros(rows: pa.Table, view: str) -> tuple[int, int]:
    """The smallest and largest ``event_timestamp`` in microseconds; refused if absent or null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if EVENT_TIMESTAMP not in rows.column_names:
        raise InvalidRequest(f"landing rows of view {view!r}: no {EVENT_TIMESTAMP!r} column")
    event = rows[EVENT_TIMESTAMP]
    if not pa.types.is_timestamp(event.type) or event.null_count:
        raise InvalidRequest(
            f"landing rows of view {view!r}: {EVENT_TIMESTAMP!r} must be a timestamp on every row"
        )
    micros = event.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    bounds = pc.min_max(micros)
    return bounds["min"].as_py(), bounds["max"].as_py()


def is_local(location: str) -> bool:
    """Whether ``location`` is on a local (or mounted) file system, where rows can land."""
    return "://" not in location.removeprefix("file://")


def _view_folder(location: str, view: str) -> Path:
    path = location.removeprefix("file://")
    if not is_local(location):
        raise ConfigError(
            f"landing folder {location}: landed rows need a local or mounted file system "
            "(atomic renames and a lock); use a local offline_store path"
        )
    return Path(path) / view


def _append_line(log: Path, line: str) -> None:
    """Append ``line`` durably; a line a crash cut short is ended first (it names no file)."""
    with open(log, "ab+") as handle:  # appends, wherever the handle was read
        size = handle.seek(0, os.SEEK_END)
        cut = size > 0 and handle.seek(size - 1) >= 0 and handle.read(1) != b"\n"
        handle.write((b"\n" if cut else b"") + line.encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _locked(folder: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(folder / _LOCK)
