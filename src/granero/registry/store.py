"""The versioned registry on a local (or shared) file system.

Layout under the registry path::

    versions/000001-<hash>.json   one immutable file per applied version
    HEAD                          the file name of the current version
    materialized.json             per view, the event-time intervals already materialized
    last_materialized.json        per view, its last materialized interval and when (runs)
    online_pending.json           per view, materialized windows not yet synced online (sync_progress)
    .lock                         serialises writers (flock)

Every write goes to a temporary file that is fsynced and then renamed into place, and HEAD moves
only after its version file is durable: a crash at any point leaves the previous state readable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from granero.atomic_files import atomic_write
from granero.definitions import RepoDefinitions
from granero.errors import RegistryError
from granero.registry.intervals import Interval, add_interval, interval_map_json, read_interval_map
from granero.registry.runs import record_run


class RegistryVersion(BaseModel):
    """One applied state of the repo."""

    version: int
    hash: str
    applied_at: datetime
    project: str
    definitions: RepoDefinitions


def content_hash(definitions: RepoDefinitions) -> str:
    """A stable hash of the definitions' content (not of when or where they were applied)."""
    canonical = json.dumps(definitions.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class FileRegistry:
    """Reads and writes registry versions and materialized intervals under one directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cached: RegistryVersion | None = None
        self._cached_name = ""
        self._head: tuple[tuple[int, ...], str | None] = ((), None)
        if "://" in str(path):
            raise RegistryError(f"registry path {path}: only local or mounted shared paths are supported")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writer lock (one apply or interval update at a time)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def head(self) -> str | None:
        """The file name of the current version, or None before the first apply.

        Read again only when the HEAD file's identity changes (it is replaced by an atomic
        rename, so a new version is a new inode and ctime): a lookup per request costs one
        ``stat``, not an open and a read."""
        file = self.path / "HEAD"
        try:
            stat = file.stat()
            identity = (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            if identity != self._head[0]:
                self._head = (identity, file.read_text().strip())
        except FileNotFoundError:
            self._head = ((), None)
        return self._head[1]

    def current(self) -> RegistryVersion | None:
        """The current version, or None before the first apply.

        Version files are immutable, so the parsed version is cached for as long as HEAD names it.
        """
        name = self.head()
        if name is None:
            return None
        if self._cached is None or self._cached_name != name:
            self._cached, self._cached_name = self.read_version_file(name), name
        return self._cached

    def read_version_file(self, name: str) -> RegistryVersion:
        file = self.path / "versions" / name
        try:
            return RegistryVersion.model_validate_json(file.read_bytes())
        except (OSError, ValidationError) as error:
            raise RegistryError(f"registry version {file} is unreadable: {error}") from None

    def versions(self) -> list[str]:
        """File names of all versions, oldest first."""
        directory = self.path / "versions"
        return sorted(p.name for p in directory.glob("*.json")) if directory.exists() else []

    def get_version(self, version: int) -> RegistryVersion:
        for name in self.versions():
            if int(name.split("-", 1)[0]) == version:
                return self.read_version_file(name)
        raise RegistryError(f"registry has no version {version}")

    def write_version(self, project: str, definitions: RepoDefinitions) -> RegistryVersion:
        """Record ``definitions`` as the next version and make it current (caller holds the lock)."""
        current = self.current()
        digest = content_hash(definitions)
        version = RegistryVersion(
            version=(current.version + 1) if current else 1,
            hash=digest,
            applied_at=datetime.now(UTC),
            project=project,
            definitions=definitions,
        )
        name = f"{version.version:06d}-{digest[:12]}.json"
        atomic_write(self.path / "versions" / name, version.model_dump_json(indent=1).encode())
        atomic_write(self.path / "HEAD", name.encode())
        return version

    def materialized(self) -> dict[str, list[Interval]]:
        """Per feature view, the merged event-time intervals already materialized."""
        return read_interval_map(self.path / "materialized.json")

    def record_materialized(self, view: str, interval: Interval) -> None:
        """Add ``interval`` to the view's materialized intervals, merging overlaps."""
        with self.locked():
            state = self.materialized()
            state[view] = add_interval(state.get(view, []), interval)
            atomic_write(self.path / "materialized.json", interval_map_json(state))
            record_run(self.path, view, interval)  # when it ran (granero status)
