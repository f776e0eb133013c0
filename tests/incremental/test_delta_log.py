"""What a Delta source's commits changed, read from log text alone (no Spark; one test reads a
real log through Spark's Hadoop file system, as for remote sources)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from granero.incremental.delta_log import changes_since, commit_name, data_changes
from granero.incremental.delta_source import delta_changes
from granero.registry import Interval


class FakeFolder:
    """A log folder held in memory: {file name: text} (the format is Delta's, written here)."""

    def __init__(self, commits: dict[int, list[dict]], extra: tuple[str, ...] = ()) -> None:
        self.files = {commit_name(v): "\n".join(json.dumps(a) for a in actions) for v, actions in commits.items()}
        self.files |= {name: "" for name in extra}

    def names(self) -> list[str]:
        return list(self.files)

    def read(self, name: str) -> str:
        return self.files[name]


def add(path: str, low: str | None, high: str | None, data_change: bool = True) -> dict:
    stats = {"numRecords": 1, "minValues": {"ts": low}, "maxValues": {"ts": high}} if low else None
    return {"add": {"path": path, "dataChange": data_change, "partitionValues": {},
                    "stats": json.dumps(stats) if stats else None}}


def test_added_files_give_their_event_times_from_stats_and_compaction_changes_nothing():
    text = "\n".join(json.dumps(a) for a in [
        {"commitInfo": {"operation": "WRITE"}},
        add("a.parquet", "2026-01-02T03:00:00.000Z", "2026-01-04T01:00:00.000+01:00"),
        add("b.parquet", "2026-01-05T00:00:00.000Z", "2026-01-05T00:00:00.000Z", data_change=False),
        {"remove": {"path": "c.parquet", "dataChange": False}},
    ])
    [change] = data_changes(text, "ts")
    assert (change.action, change.path) == ("add", "a.parquet")
    assert (change.first, change.last) == (datetime(2026, 1, 2, 3, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC))


def test_a_partition_column_gives_the_time_and_non_time_stats_give_none():
    text = json.dumps({"add": {"path": "p", "dataChange": True, "partitionValues": {"ts": "2026-01-03"}}})
    assert data_changes(text, "ts")[0].first == datetime(2026, 1, 3, tzinfo=UTC)
    numeric = add("n", "x", "y")
    numeric["add"]["stats"] = json.dumps({"minValues": {"ts": 1}, "maxValues": {"ts": 2}})
    assert (data_changes(json.dumps(numeric), "ts")[0].first) is None


def test_only_commits_after_the_recorded_version_are_read():
    folder = FakeFolder({0: [add("old", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z")],
                         1: [add("new", "2026-01-02T00:00:00Z", "2026-01-02T05:00:00Z")]})
    found = changes_since(folder, 0, "ts")
    assert (found.latest, [f.path for f in found.files], found.unknown) == (1, ["new"], None)
    assert changes_since(folder, 1, "ts").files == []
    assert [f.path for f in changes_since(folder, None, "ts").files] == ["old", "new"]


def test_a_log_gap_or_versions_going_back_are_unknown_changes_never_skipped():
    cleaned = FakeFolder({5: [], 6: []}, extra=("00000000000000000004.checkpoint.parquet",))
    gap = changes_since(cleaned, 2, "ts")
    assert gap.unknown and "commit 3" in gap.unknown
    recreated = changes_since(FakeFolder({0: []}), 4, "ts")
    assert recreated.unknown and "went back" in recreated.unknown
    [everything] = delta_changes("/src", gap, 2, "ts", spark=lambda: None)
    assert everything.span is None and "commit 3" in everything.reason


def test_changed_files_become_whole_utc_days_and_a_remove_without_stats_is_everything():
    folder = FakeFolder({1: [add("a", "2026-01-02T03:00:00Z", "2026-01-02T04:00:00Z"),
                             {"remove": {"path": "gone.parquet", "dataChange": True}}]})
    day, everything = delta_changes("/src", changes_since(folder, 0, "ts"), 0, "ts", spark=lambda: None)
    assert day.span == Interval(start=datetime(2026, 1, 2, tzinfo=UTC), end=datetime(2026, 1, 3, tzinfo=UTC))
    assert everything.span is None and "gone.parquet" in everything.reason


@pytest.mark.spark
def test_a_log_read_through_hadoop_equals_the_local_read(spark, tmp_path):
    """Remote sources (s3a://, abfss://...) are read through Spark's Hadoop file system: here a
    file:// URI, compared with the local reader on the same folder."""
    from granero.incremental.delta_log import LocalLog
    from granero.incremental.delta_source import HadoopLog

    spark.range(3).write.format("delta").save(str(tmp_path / "t"))
    spark.range(2).write.format("delta").mode("append").save(str(tmp_path / "t"))
    local, remote = LocalLog(tmp_path / "t"), HadoopLog(spark, f"file://{tmp_path / 't'}")
    def commits(names: list[str]) -> list[str]:  # Hadoop hides its .crc side files, os does not
        return sorted(n for n in names if n.endswith(".json") and n[0].isdigit())

    assert commits(remote.names()) == commits(local.names()) == [commit_name(0), commit_name(1)]
    assert remote.read(commit_name(1)) == local.read(commit_name(1))
