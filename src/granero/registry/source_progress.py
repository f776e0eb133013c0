"""Source progress: per view, how far incremental runs have read its source, beyond event time.

Event-time intervals (``materialized.json``) cannot tell that rows arrived late in a window
already materialized. So each view also records, in ``source_progress.json``:

- ``source``: which source the marks below belong to (a view re-pointed elsewhere starts over);
- ``delta_version``: the Delta source's commit version read by the last incremental run;
- ``landing_marker``: the landing folder's marker (rows pushed or streamed) at that run.

A view's entry is written only once every window of its run committed (and was recorded in
``materialized.json``): a crash before that leaves the previous marks, so the next run reads the
same changes again (re-materializing a window replaces it) and never skips one.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from granero.atomic_files import atomic_write
from granero.errors import RegistryError
from granero.registry.store import FileRegistry

PROGRESS_FILE = "source_progress.json"


class SourceMark(BaseModel):
    """What one view's last incremental run had read of its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    delta_version: int | None = None
    landing_marker: str | None = None


class SourceProgress:
    """The source marks of a registry's views."""

    def __init__(self, registry: FileRegistry) -> None:
        self.registry = registry
        self.file = registry.path / PROGRESS_FILE

    def mark(self, view: str) -> SourceMark | None:
        """The view's mark, None before its first run that recorded one."""
        return self._read().get(view)

    def record(self, view: str, mark: SourceMark) -> None:
        """Replace the view's mark (call only after the run's windows committed)."""
        with self.registry.locked():
            state = self._read()
            state[view] = mark
            payload = {name: m.model_dump(mode="json") for name, m in sorted(state.items())}
            atomic_write(self.file, json.dumps(payload, indent=1).encode())

    def _read(self) -> dict[str, SourceMark]:
        if not self.file.exists():
            return {}
        try:
            raw = json.loads(self.file.read_text())
            return {view: SourceMark.model_validate(mark) for view, mark in raw.items()}
        except (OSError, ValueError, ValidationError) as error:
            raise RegistryError(f"{self.file} is unreadable: {error}") from None
