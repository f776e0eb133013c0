"""When each view was last materialized: ``last_materialized.json`` beside ``materialized.json``.

``materialized.json`` keeps merged event-time intervals, which cannot say when a job ran or which
window it wrote last. This file keeps, per view, the interval of its last materialization and the
wall time it was recorded (``granero status``, the serving metrics). Written atomically, under the
registry's lock, in the same step that records the interval.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from granero.atomic_files import atomic_write
from granero.errors import RegistryError
from granero.registry.intervals import Interval

RUNS_FILE = "last_materialized.json"


class MaterializationRun(BaseModel):
    """A view's last materialization: the event-time ``interval`` it wrote, recorded at ``ran_at``."""

    interval: Interval
    ran_at: datetime


def read_runs(registry_path: Path) -> dict[str, MaterializationRun]:
    """Per view, its last materialization (empty before the first one)."""
    file = registry_path / RUNS_FILE
    if not file.exists():
        return {}
    try:
        raw = json.loads(file.read_text())
        return {view: MaterializationRun.model_validate(run) for view, run in raw.items()}
    except (OSError, ValueError, ValidationError) as error:
        raise RegistryError(f"{file} is unreadable: {error}") from None


def record_run(registry_path: Path, view: str, interval: Interval) -> None:
    """Record that ``view``'s ``interval`` was materialized now (the caller holds the lock)."""
    runs = read_runs(registry_path)
    runs[view] = MaterializationRun(interval=interval, ran_at=datetime.now(UTC))
    payload = {name: run.model_dump(mode="json") for name, run in runs.items()}
    atomic_write(registry_path / RUNS_FILE, json.dumps(payload, indent=1).encode())
