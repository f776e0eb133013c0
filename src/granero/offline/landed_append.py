"""A view's landed rows appended to its offline table, exactly once, a range of the landing log
at a time: how a stream's rows reach training without a second Spark query.

The online stream query lands each micro-batch (``offline.landing``: durable, idempotent by batch
id). ``LandedAppender.append`` then appends what landed since its last append to the offline
table, in process: a local Delta table is one delta-rs commit, with no Spark job and no second
parse of the messages. Its state, a small JSON file beside the landing log::

    {"appended": 1200, "appending": [1200, 1340]}

``appended`` is the first log line not yet in the table. Before an append, the appender records
the range it is about to append (``appending``), then appends its files as the writer
``<view>-landed`` with the range's end as sequence (``OfflineStore.append``: a sequence it
committed already adds nothing), then moves ``appended`` to the end. A process killed anywhere
redoes the recorded range on its next append: the same files (``landing.files_of_lines``), the
same sequence, so the table gets each landed file once.

``held`` is the view's append lock, which a materialization of the view takes too: it appends
what landed first, so its window rewrite (which unions the landed rows) replaces the appended
copies instead of racing an append that would add them a second time.

Started by a stream (``start``, at the log's length then): only rows landed from that point on
are appended, never rows an older writer appended already. A view no stream started has no state
and is never appended here (its pushes reach the table by materialization, as before).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from granero.atomic_files import atomic_write, create_if_absent, exclusive_lock
from granero.errors import MaterializationError
from granero.offline import landing
from granero.offline.schema import (
    EVENT_DATE,
    EVENT_TIMESTAMP,
    conform_arrow,
    partition_columns,
    table_arrow_schema,
    table_schema,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.tables import OfflineStore

_STATE = "_offline_append.json"
_LOCK = "_offline_append.lock"
LINES_PER_APPEND = 1000
"""Most landing log lines (files: one per micro-batch or push) one append commits: after a long
stop, the backlog goes in bounded commits instead of one holding every row in memory."""


@dataclass(frozen=True)
class AppendState:
    appended: int
    """The first landing log line whose files are not in the offline table yet."""
    appending: tuple[int, int] | None = None
    """The range of log lines an append started on and may not have finished."""


@dataclass
class LandedAppender:
    """Appends one view's landed rows to its offline table (``append``), under its lock."""

    view: FeatureView
    defs: RepoDefinitions
    offline: OfflineStore
    location: str
    """The landing location (``landing.landing_location`` of the offline store's path)."""
    totals: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0})
    """Appends that added rows, and their rows, in this process (a redone range counts again)."""

    @property
    def writer_id(self) -> str:
        return f"{self.view.name}-landed"

    def start(self) -> None:
        """Begin appending at the log's current length, unless an earlier start did. Needs no
        lock (an append may hold it for long): the state is created only if absent, atomically."""
        if read_state(self.location, self.view.name) is None:
            create_state(self.location, self.view.name, AppendState(landing.log_length(self.location, self.view.name)))

    def append(self) -> int:
        """Append every file landed since the last append (redoing one a kill cut short); its rows."""
        with held(self.location, self.view.name):
            return self.append_held()

    def append_held(self) -> int:
        """``append`` for a caller that holds the lock already (a materialization): range after
        range of at most ``LINES_PER_APPEND`` log lines, until none is left."""
        added = 0
        while (appending := self._recorded_range()) is not None:
            added += self._append_range(*appending)
        return added

    def _recorded_range(self) -> tuple[int, int] | None:
        """The range an append recorded and did not finish, else the next one, recorded now;
        None when everything landed is appended (or no stream started appending)."""
        state = read_state(self.location, self.view.name)
        if state is None or state.appending is not None:
            return None if state is None else state.appending
        end = min(landing.log_length(self.location, self.view.name), state.appended + LINES_PER_APPEND)
        if end == state.appended:
            return None
        save_state(self.location, self.view.name, AppendState(state.appended, (state.appended, end)))
        return state.appended, end

    def _append_range(self, start: int, end: int) -> int:
        """Append the files of log lines ``[start, end)`` as sequence ``end``; record it done."""
        rows = self._rows(landing.files_of_lines(self.location, self.view.name, start, end))
        if rows is not None:
            self.offline.append(self.view.name, rows, table_schema(self.defs, self.view), self.writer_id, end,
                                partition_columns(self.view))
            self.totals["batches"] += 1
            self.totals["rows"] += rows.num_rows
        save_state(self.location, self.view.name, AppendState(end))
        return 0 if rows is None else rows.num_rows

    def _rows(self, files: list[Path]) -> pa.Table | None:
        """The files' rows in table form (``event_date`` added; a column added later reads null)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not files:
            return None
        schema = table_arrow_schema(self.defs, self.view)
        tables = [with_event_date(pq.read_table(path)) for path in files]
        rows = pa.concat_tables([conform_arrow(table, schema) for table in tables])
        return rows if rows.num_rows else None


def with_event_date(rows: pa.Table) -> pa.Table:
    """``rows`` with ``event_date``: the UTC day of each event time (``schema.utc_date``'s rule)."""
    import pyarrow as pa

    utc = rows[EVENT_TIMESTAMP].cast(pa.timestamp("us", tz="UTC"))
    day = utc.cast(pa.date32())
    if EVENT_DATE in rows.column_names:
        return rows.set_column(rows.column_names.index(EVENT_DATE), EVENT_DATE, day)
    return rows.append_column(EVENT_DATE, day)


def held(location: str, view: str) -> contextlib.AbstractContextManager[None]:
    """The view's append lock (one appender at a time; a materialization of the view too)."""
    folder = landing.view_folder(location, view)
    folder.mkdir(parents=True, exist_ok=True)
    return exclusive_lock(folder / _LOCK)


def read_state(location: str, view: str) -> AppendState | None:
    """The view's append state; None when no stream ever started appending its landed rows."""
    path = landing.view_folder(location, view) / _STATE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        appending = data["appending"]
        return AppendState(int(data["appended"]), None if appending is None else (int(appending[0]),
                                                                               int(appending[1])))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise MaterializationError(f"{path}: not an append state ({error}); restore it, or delete it "
                                   "to append only what lands from now on") from None


def save_state(location: str, view: str, state: AppendState) -> None:
    atomic_write(landing.view_folder(location, view) / _STATE, _state_bytes(state))


def create_state(location: str, view: str, state: AppendState) -> None:
    """``save_state`` only if the view has no state yet (two processes starting at once: the
    first one's stands)."""
    create_if_absent(landing.view_folder(location, view) / _STATE, _state_bytes(state))


def _state_bytes(state: AppendState) -> bytes:
    data = {"appended": state.appended, "appending": None if state.appending is None else list(state.appending)}
    return json.dumps(data).encode()


@contextlib.contextmanager
def caught_up(offline: OfflineStore, defs: RepoDefinitions, view: FeatureView, location: str) -> Iterator[None]:
    """Hold the view's append lock with every landed file appended: a window rewrite inside
    (which unions the landed rows) then replaces the appended copies, and no append can add them
    again behind it. Nothing to hold for a landing off the local file system (none lands there)."""
    if not landing.is_local(location):
        yield
        return
    with held(location, view.name):
        LandedAppender(view, defs, offline, location).append_held()
        yield
