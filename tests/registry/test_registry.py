"""Registry round trips, plan diffs, breaking-change refusal and crash safety."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from granero import FeatureStore
from granero.errors import BreakingChangeError, RegistryError
from granero.registry import FileRegistry, Interval, add_interval
from tests.repo_builder import ENTITIES, VIEWS, standard_repo


@pytest.fixture
def repo(tmp_path):
    return standard_repo(tmp_path / "repo")


def test_apply_round_trip_and_versions(repo):
    store = FeatureStore(repo)
    plan, version = store.apply()
    assert version is not None and version.version == 1
    assert store.registered() == plan.definitions
    assert FileRegistry(store.config.registry.path).current().hash == version.hash
    assert store.apply()[1] is None  # unchanged definitions: no new version
    (repo / "views.py").write_text(VIEWS.replace('description="conversion"', 'description="conv rate"'))
    assert store.apply()[1].version == 2
    assert len(store.registry.versions()) == 2
    assert store.registry.get_version(1).definitions == plan.definitions


def test_registered_before_apply_is_a_clear_error(repo):
    with pytest.raises(RegistryError, match="run `granero apply` first"):
        FeatureStore(repo).registered()


def test_plan_shows_field_level_diff_and_writes_nothing(repo):
    store = FeatureStore(repo)
    store.apply()
    (repo / "views.py").write_text(VIEWS.replace('description="conversion"', 'description="conv rate"')
                                   .replace('ttl="1d"', 'ttl="2d"'))
    (repo / "extra.py").write_text("from granero import Entity\nrider = Entity(join_keys={'rider_id': 'string'})\n")
    before = store.registry.versions()
    changes = {(c.kind, c.name): c for c in store.plan().changes}
    assert store.registry.versions() == before
    assert changes[("entity", "rider")].op == "added"
    view = changes[("feature_view", "driver_stats")]
    assert view.op == "changed"
    fields = {f.path: (f.old, f.new) for f in view.fields}
    assert fields == {"ttl": ("1d", "2d"), "features.conv_rate.description": ("conversion", "conv rate")}
    (repo / "services.py").unlink()
    removed = [c for c in store.plan().changes if c.op == "removed"]
    assert [(c.kind, c.name) for c in removed] == [("feature_service", "ranking")]


def test_dtype_change_is_refused_unless_forced(repo):
    store = FeatureStore(repo)
    store.apply()
    (repo / "views.py").write_text(VIEWS.replace('name="trips", dtype="int64"', 'name="trips", dtype="float64"'))
    with pytest.raises(BreakingChangeError, match="'trips' changes dtype from int64 to float64"):
        store.apply()
    assert store.registry.current().version == 1
    assert store.apply(force=True)[1].version == 2


def test_join_key_change_is_refused(repo):
    store = FeatureStore(repo)
    store.apply()
    (repo / "entities.py").write_text(ENTITIES.replace('"driver_id": "int64"', '"driver_id": "string"'))
    with pytest.raises(BreakingChangeError, match="join keys change"):
        store.apply()


CRASH_DURING_HEAD_SWAP = """
import os, sys
import granero.atomic_files as store_module
from granero import FeatureStore
real_replace = os.replace
def crash(src, dst):
    if str(dst).endswith("HEAD"):
        os._exit(9)  # the process dies between writing the version and moving HEAD
    real_replace(src, dst)
store_module.os.replace = crash
FeatureStore(sys.argv[1]).apply()
"""


def test_crash_mid_apply_leaves_previous_version_readable(repo):
    store = FeatureStore(repo)
    store.apply()
    (repo / "views.py").write_text(VIEWS.replace('ttl="1d"', 'ttl="3d"'))
    result = subprocess.run([sys.executable, "-c", CRASH_DURING_HEAD_SWAP, str(repo)], capture_output=True)
    assert result.returncode == 9
    current = FeatureStore(repo).registry.current()
    assert current.version == 1
    assert current.definitions.feature_views["driver_stats"].ttl.days == 1
    assert FeatureStore(repo).apply()[1].version == 2  # the next apply proceeds normally


def test_crash_while_writing_a_file_never_exposes_partial_content(repo, monkeypatch):
    store = FeatureStore(repo)
    store.apply()
    head_before = (store.registry.path / "HEAD").read_text()

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr("granero.atomic_files.os.fsync", failing_fsync)
    (repo / "views.py").write_text(VIEWS.replace('ttl="1d"', 'ttl="3d"'))
    with pytest.raises(OSError, match="disk full"):
        store.apply()
    assert (store.registry.path / "HEAD").read_text() == head_before
    assert not list(store.registry.path.rglob("*.tmp"))
    assert len(store.registry.versions()) == 1


def test_corrupt_version_file_is_reported(repo):
    store = FeatureStore(repo)
    store.apply()
    version_file = store.registry.path / "versions" / store.registry.versions()[0]
    version_file.write_text("{not json")
    with pytest.raises(RegistryError, match="unreadable"):
        store.registry.current()


def test_materialized_intervals_merge(repo):
    registry = FeatureStore(repo).registry
    day = lambda d: datetime(2026, 1, d, tzinfo=UTC)  # noqa: E731
    registry.record_materialized("driver_stats", Interval(start=day(1), end=day(2)))
    registry.record_materialized("driver_stats", Interval(start=day(3), end=day(4)))
    registry.record_materialized("driver_stats", Interval(start=day(2), end=day(3)))
    assert registry.materialized()["driver_stats"] == [Interval(start=day(1), end=day(4))]
    raw = json.loads((registry.path / "materialized.json").read_text())
    assert list(raw) == ["driver_stats"]


def test_add_interval_keeps_gaps_and_takes_naive_as_utc():
    first = Interval(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    assert first.start.tzinfo is UTC
    later = Interval(start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 1, 6, tzinfo=UTC))
    assert add_interval([later], first) == [first, later]
    with pytest.raises(ValueError, match="must be after start"):
        Interval(start=datetime(2026, 1, 2), end=datetime(2026, 1, 1))


def test_a_reader_sees_every_new_version_at_once(tmp_path):
    """head() is cached by the HEAD file's identity: each apply, however fast after the last, is
    seen by a registry object that read the previous one (the serving path reads HEAD per call)."""
    from granero.definitions import RepoDefinitions

    reader, writer = FileRegistry(tmp_path / "registry"), FileRegistry(tmp_path / "registry")
    assert reader.head() is None
    for _ in range(20):
        written = writer.write_version("p", RepoDefinitions())
        assert reader.head() == writer.head()
        assert reader.current().version == written.version
    (tmp_path / "registry" / "HEAD").unlink()
    assert reader.head() is None
