"""Run by tests/test_parallel_suite.py on every pytest-xdist worker (``--dist each``; named outside
``test_*.py``, so the suite itself never collects it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import redis


def test_the_worker_claims_a_key_no_other_worker_holds(redis_url):
    """Sets ``xdist-probe`` (if absent) on database 3, a number the suite's tests hard-code: a
    second worker on the same server finds it taken."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    try:
        taken = client.set("xdist-probe", os.environ["PYTEST_XDIST_WORKER"], nx=True)
    finally:
        client.close()
    worker = os.environ["PYTEST_XDIST_WORKER"]
    (Path(os.environ["GRANERO_PROBE_OUT"]) / f"{worker}.json").write_text(json.dumps({"url": redis_url}))
    assert taken, f"{worker}: xdist-probe already taken on {redis_url}: another worker shares it"
