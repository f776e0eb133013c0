"""The demo's stream step (feature_repo/scripts/stream_demo.py) run as a real subprocess against
the session's broker: it prints driver 1001's value served by the latest event time, every event
in the offline table, and the malformed message as the one dead letter."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from granero.streaming.local_broker import Broker
from tests.conftest import scaled

pytestmark = [pytest.mark.timeout(900), pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "feature_repo" / "scripts" / "stream_demo.py"


def demo_module():
    spec = importlib.util.spec_from_file_location("stream_demo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not in the demo's output:\n{text}"
    return match.group(1)


def test_stream_demo_prints_served_latest_offline_count_and_dead_letter(kafka: Broker, tmp_path: Path):
    demo = demo_module()
    produced = demo.events()
    latest = max((e for e in produced if e["driver_id"] == 1001), key=lambda e: e["ts"])
    assert latest != [e for e in produced if e["driver_id"] == 1001][-1]  # order alone would not do

    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "demo"),
                          "--bootstrap-servers", kafka.bootstrap_servers],
                         cwd=ROOT, capture_output=True, text=True, timeout=scaled(600))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert float(printed(r"^served: driver 1001 speed (\S+) ", out)) == latest["speed"]
    assert int(printed(r"^offline: (\d+) rows", out)) == len(produced)
    assert printed(r"^dead letters: (\d+):", out) == "1"
    assert printed(r"^dead letters: \d+: '(.*)' \(", out) == demo.MALFORMED.decode()
    assert "broker stopped" not in out  # the session's broker was used, not stopped
