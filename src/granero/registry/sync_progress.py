"""Online sync progress: per view, the materialized windows the online store has not caught up with.

The offline intervals (``materialized.json``) say what the tables hold; they cannot say what Redis
holds, since a sync can fail (Redis down, a killed job) after its table write committed. So a
window is also recorded here, in ``online_pending.json``:

    table write commits → window added here → interval recorded → sync → window removed here

Added *before* the interval, a crash between the two leaves a window pending (synced once more,
harmless: writes are write-if-newer) rather than lost. Removed only after its sync succeeded, so
the next materialization of the view (incremental or not) and ``granero sync`` find and sync it.
Both files are written atomically under the registry's lock.
"""

from __future__ import annotations

from granero.atomic_files import atomic_write
from granero.registry.intervals import (
    Interval,
    add_interval,
    interval_map_json,
    read_interval_map,
    subtract_interval,
)
from granero.registry.store import FileRegistry

PENDING_FILE = "online_pending.json"


class SyncProgress:
    """The pending online windows of a registry's views."""

    def __init__(self, registry: FileRegistry) -> None:
        self.registry = registry
        self.file = registry.path / PENDING_FILE

    def pending(self, view: str) -> list[Interval]:
        """The view's windows whose table rows may be missing from the online store."""
        return read_interval_map(self.file).get(view, [])

    def add(self, view: str, window: Interval) -> None:
        """Record ``window`` as written offline and not yet synced (merged with the others)."""
        with self.registry.locked():
            state = read_interval_map(self.file)
            state[view] = add_interval(state.get(view, []), window)
            atomic_write(self.file, interval_map_json(state))

    def synced(self, view: str, windows: list[Interval]) -> None:
        """Record that ``windows``, read from the table after they were added, are online now."""
        if not windows:
            return
        with self.registry.locked():
            state = read_interval_map(self.file)
            left = state.get(view, [])
            for window in windows:
                left = subtract_interval(left, window)
            state[view] = left
            atomic_write(self.file, interval_map_json(state))
