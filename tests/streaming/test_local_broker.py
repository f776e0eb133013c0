"""The local broker's lifecycle: a start that is interrupted (Ctrl-C while waiting for the broker)
or fails leaves no JVM behind, and the broker serves topics until stopped."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from granero.streaming import local_broker
from tests.conftest import scaled

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, local_broker.GraneroError])
def test_an_interrupted_start_stops_its_broker(tmp_path: Path, monkeypatch, interruption):
    started = []

    def interrupted(broker, timeout):
        started.append(broker)
        raise interruption("stopped while waiting")

    monkeypatch.setattr(local_broker, "_wait_until_ready", interrupted)
    with pytest.raises(interruption):
        local_broker.start_broker(tmp_path, timeout=scaled(120))
    (broker,) = started
    assert broker.process.poll() is not None  # the JVM was stopped, not left running


def test_a_cluster_id_never_starts_like_an_option(monkeypatch):
    """CI once drew ``-Q_vV3...``: the storage tool read it as an option and refused to format."""
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(local_broker.uuid, "uuid4", lambda: next(drawn))
    assert local_broker.cluster_id() == "AQEBAQEBAQEBAQEBAQEBAQ"


def test_the_broker_version_is_the_one_make_setup_fetches():
    """``make setup`` fetches ``KAFKA``'s jars into ~/.m2; the broker resolves its own version's:
    two versions kept equal by hand, so a bump of one alone fails here, not offline in CI."""
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    fetched = re.search(r"^KAFKA := org\.apache\.kafka:kafka_2\.13:(\S+)$", makefile, re.MULTILINE)
    assert fetched is not None, "the Makefile no longer names KAFKA"
    assert fetched[1] == local_broker.KAFKA_VERSION
