"""What a Delta source's commits changed, read from its ``_delta_log`` without reading data.

Each commit file (``<version, 20 digits>.json``) lists ``add`` and ``remove`` actions. An action
with ``dataChange`` true changed rows (an ``OPTIMIZE`` rewrite has it false and changes none).
Its ``stats`` hold ``minValues``/``maxValues`` per column, so the event times a changed file
spans are known from the log alone; a partition column is in ``partitionValues`` instead. A file
without usable statistics has ``first``/``last`` None: the caller reads its timestamps (an added
file) or takes every event time as changed (a removed one, whose data may be gone).

A log that lacks a commit between the version read last time and now (cleaned up after a
checkpoint) or whose versions went back (the table was recreated) cannot say what changed:
``LogChanges.unknown`` then says why, and everything is re-materialized.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from granero.offline.delta import latest_version


class LogFolder(Protocol):
    """A ``_delta_log`` folder: its file names and their text."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> str: ...


class LocalLog:
    """A ``_delta_log`` folder on a local file system, read without Spark."""

    def __init__(self, table: Path) -> None:
        self.folder = table / "_delta_log"

    def names(self) -> list[str]:
        return os.listdir(self.folder) if self.folder.is_dir() else []

    def read(self, name: str) -> str:
        return (self.folder / name).read_text()


@dataclass(frozen=True)
class FileChange:
    """A data file one commit added or removed, with the event times its statistics give."""

    action: str
    path: str
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class LogChanges:
    """The data files changed after one version up to ``latest``; ``unknown`` says why the
    log cannot tell (then ``files`` is empty and every event time counts as changed)."""

    latest: int | None
    files: list[FileChange]
    unknown: str | None = None


def commit_name(version: int) -> str:
    return f"{version:020d}.json"


def changes_since(log: LogFolder, since: int | None, column: str) -> LogChanges:
    """The data files changed by commits after version ``since`` (None: from the first one)."""
    names = log.names()
    latest = latest_version(names)
    first = -1 if since is None else since
    if latest is None or latest == first:
        return LogChanges(latest, [])
    if latest < first:
        return LogChanges(latest, [], f"its versions went back from {first} to {latest} (recreated)")
    present = set(names)
    missing = [v for v in range(first + 1, latest + 1) if commit_name(v) not in present]
    if missing:
        return LogChanges(latest, [], f"its log no longer holds commit {missing[0]} (cleaned up)")
    files = [change for v in range(first + 1, latest + 1)
             for change in data_changes(log.read(commit_name(v)), column)]
    return LogChanges(latest, files)


def data_changes(commit_text: str, column: str) -> list[FileChange]:
    """The commit's adds and removes that changed rows, with ``column``'s range in each file."""
    changes = []
    for line in commit_text.splitlines():
        action = json.loads(line) if line.strip() else {}
        for kind in ("add", "remove"):
            body = action.get(kind)
            if body is not None and body.get("dataChange", True):
                first, last = event_range(body, column)
                changes.append(FileChange(kind, body["path"], first, last))
    return changes


def event_range(body: dict, column: str) -> tuple[datetime | None, datetime | None]:
    """``column``'s least and greatest value in the file, from the action alone (None, None when
    its statistics or partition values do not give them as times)."""
    partition = (body.get("partitionValues") or {}).get(column)
    if partition is not None:
        moment = as_time(partition)
        return moment, moment
    try:
        stats = json.loads(body.get("stats") or "{}")
    except ValueError:
        return None, None
    first = as_time((stats.get("minValues") or {}).get(column))
    last = as_time((stats.get("maxValues") or {}).get(column))
    return (first, last) if first is not None and last is not None else (None, None)


def as_time(value: object) -> datetime | None:
    """A statistics value as an instant; naive values are UTC, as everywhere in Granero.
    None for anything that is not a time (a string or number column, a null)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
