"""The manual cleanup the README allows (delete old landed data files, keep ``_landed.log``)
leaves the landing readable and the incremental markers right: removed files are skipped,
files landed before and after are still read and reported once."""

from __future__ import annotations

from pathlib import Path

from granero.offline import landing
from tests.offline.test_landing import instant, rows, window


def test_deleted_landed_files_are_skipped_and_markers_still_resume(tmp_path: Path) -> None:
    location = str(tmp_path / "offline_landing")
    for minute in (1, 2, 3):
        landing.write_landed(location, "stats", rows([minute], [minute]), f"batch-{minute}")
    _, marker = landing.landed_since(location, "stats", None)
    old = Path(location) / "stats" / f"{landing.batch_key('batch-1')}.parquet"
    assert landing.file_window(old) == instant(1)
    old.unlink()  # the cleanup: its events lie before the horizon
    assert landing.landed_since(location, "stats", marker) == ([], marker)
    assert landing.landed_since(location, "stats", None)[0] == [instant(2), instant(3)]
    assert landing.read_landed_arrow(location, "stats", None)["driver_id"].to_pylist() == [2, 3]
    landing.write_landed(location, "stats", rows([4], [4]), "batch-4")
    windows, _ = landing.landed_since(location, "stats", marker)
    assert windows == [instant(4)]
    assert landing.read_landed_arrow(location, "stats", window(0, 10))["driver_id"].to_pylist() == [2, 3, 4]
