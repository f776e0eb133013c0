"""Files Granero writes atomically get the umask's mode (0666 & ~umask), as any file the user
writes does: a registry on a shared folder stays readable by the group the umask lets in."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from granero.atomic_files import atomic_write
from granero.definitions import RepoDefinitions
from granero.registry import FileRegistry, Interval

UMASKS = [0o022, 0o027, 0o077, 0o002]


@pytest.fixture(params=UMASKS, ids=oct)
def umask(request) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_take_the_umasks_mode_new_or_replaced(tmp_path, umask):
    target = tmp_path / "deep" / "file.json"
    atomic_write(target, b"one")
    assert mode(target) == 0o666 & ~umask
    target.chmod(0o600)
    atomic_write(target, b"two")  # a replaced file is a new file: the umask decides again
    assert target.read_bytes() == b"two" and mode(target) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temporary left


def test_registry_files_take_the_umasks_mode(tmp_path, umask):
    registry = FileRegistry(tmp_path / "registry")
    registry.write_version("p", RepoDefinitions())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    registry.record_materialized("v", Interval(start=start, end=start.replace(day=2)))
    written = [p for p in registry.path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert {p.name for p in written} >= {"HEAD", "materialized.json"}
    assert len(list(registry.path.glob("versions/*.json"))) == 1
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(0o666 & ~umask) for p in written}


@pytest.mark.spark
@pytest.mark.parametrize("mask", [0o022, 0o027], ids=oct)
def test_parquet_schema_files_take_the_umasks_mode(spark, tmp_path, mask):
    from granero.offline.tables import build_offline_store
    from tests.offline.conftest import offline_config
    from tests.offline.test_tables import frame, window

    store = build_offline_store(offline_config("parquet", tmp_path), spark)
    previous = os.umask(mask)
    try:
        store.write_window("view", frame(spark, [(1, 1.0, 0.5)]), window(0, 24), ["event_date"])
    finally:
        os.umask(previous)
    assert mode(store.table_path("view") / "_schema.json") == 0o666 & ~mask
