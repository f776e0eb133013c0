"""The suite under pytest-xdist (``make test``): workers never share a Redis server, and the
costliest test files are handed out first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

from tests.conftest import ROOT, costliest_files_first, free_port, scaled, start_redis


def test_each_worker_has_a_redis_server_of_its_own_even_when_one_is_given(tmp_path):
    """GRANERO_TEST_REDIS_URL names a live server; under xdist both workers still start their own
    (sharing it, the second would find the first's key on a hard-coded database)."""
    port = free_port()
    given = start_redis(tmp_path, port)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(GRANERO_PROBE_OUT=str(out), GRANERO_TEST_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "each",
             "--basetemp", str(tmp_path / "inner"), "tests/xdist_probe.py"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(300))
    finally:
        given.terminate()
        given.wait(timeout=scaled(10))
    assert done.returncode == 0, done.stdout[-3000:]
    urls = {path.stem: json.loads(path.read_text())["url"] for path in out.iterdir()}
    assert sorted(urls) == ["gw0", "gw1"]
    assert len(set(urls.values())) == 2 and env["GRANERO_TEST_REDIS_URL"] not in urls.values()


def fake_test(nodeid: str, *markers: str, fixtures: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, fixturenames=list(fixtures),
                           get_closest_marker=lambda name: name if name in markers else None)


def test_files_go_out_costliest_first_each_in_its_own_order():
    items = [fake_test("tests/a.py::x"), fake_test("tests/a.py::y"),
             fake_test("tests/b.py::x", fixtures=("spark",)), fake_test("tests/c.py::x", "slow"),
             fake_test("tests/c.py::y"), fake_test("tests/d.py::x")]
    costliest_files_first(items)
    assert [item.nodeid for item in items] == [
        "tests/c.py::x", "tests/c.py::y", "tests/b.py::x", "tests/a.py::x", "tests/a.py::y",
        "tests/d.py::x"]
