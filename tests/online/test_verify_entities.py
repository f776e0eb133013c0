"""verify on a real repo: every entity of a small view is checked (one skewed key among hundreds is
always found), large views are sampled, the output says how many of how many, and a small local
repo is verified without starting a JVM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from granero.cli.main import app
from granero.feature_store import FeatureStore
from granero.online.encoding import encode_entity_key, key_prefix
from tests.online.test_sync_catch_up import DAY, T0, make_repo, write_source

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]

RIDERS = 289
NOW = T0 + 2 * DAY


@pytest.fixture(scope="module")
def riders_repo(tmp_path_factory, spark, redis_url) -> tuple[Path, str]:
    """289 riders materialized (two days) into a Delta table and a Redis database of their own."""
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    store = make_repo(tmp_path_factory.mktemp("verify") / "repo", url)
    write_source(store.repo_path, days=2, riders=RIDERS)
    store.materialize(T0, NOW)
    store.close()
    return store.repo_path, url


def rider_key(rider: int) -> bytes:
    return key_prefix("catchup", "scores") + encode_entity_key(["int64"], [rider])


@pytest.mark.parametrize("victim", [0, 137, RIDERS - 1])
def test_one_skewed_entity_among_hundreds_is_found_every_time(riders_repo, victim):
    repo, url = riders_repo
    client = redis.Redis.from_url(url)
    good = client.get(rider_key(victim))
    neighbour = client.get(rider_key((victim + 1) % RIDERS))
    client.set(rider_key(victim), neighbour)  # a well-formed row holding another rider's score
    try:
        result = CliRunner().invoke(
            app, ["verify", "--repo", str(repo), "--now", NOW.isoformat(), "--json"]
        )
        table = CliRunner().invoke(app, ["verify", "--repo", str(repo), "--now", NOW.isoformat()])
    finally:
        client.set(rider_key(victim), good)
    assert result.exit_code == 9, result.output
    [view] = json.loads(result.stdout)["views"]
    assert (view["checked"], view["total"], view["mismatches"], view["engine"]) == (
        RIDERS, RIDERS, 1, "local"
    )
    assert view["examples"][0]["entity"] == {"rider_id": victim}
    assert table.exit_code == 9 and f"{RIDERS}" in table.stdout and "local" in table.stdout


def test_large_views_are_sampled_and_say_so(riders_repo):
    repo, _ = riders_repo
    with FeatureStore(repo) as store:
        first, again = store.verify(sample=50, now=NOW), store.verify(sample=50, now=NOW)
        everything = store.verify(now=NOW)
    assert first.ok and [(v.checked, v.total) for v in first.views] == [(50, RIDERS)]
    assert first.to_dict() == again.to_dict()  # the same seeded draw
    assert everything.ok and [(v.checked, v.total) for v in everything.views] == [(RIDERS, RIDERS)]


def test_verify_of_a_small_local_repo_starts_no_jvm(riders_repo):
    repo, _ = riders_repo
    code = (
        "import json, sys\n"
        "from datetime import datetime\n"
        "from granero.feature_store import FeatureStore\n"
        "with FeatureStore(sys.argv[1]) as store:\n"
        "    report = store.verify(now=datetime.fromisoformat(sys.argv[2]))\n"
        "pyspark = sys.modules.get('pyspark')\n"
        "jvm = pyspark is not None and pyspark.SparkContext._gateway is not None\n"
        "print(json.dumps({'ok': report.ok, 'checked': report.views[0].checked, 'jvm': jvm}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(repo), NOW.isoformat()],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "ok": True, "checked": RIDERS, "jvm": False
    }


def test_a_parquet_table_is_verified_in_process_too(spark, tmp_path, redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(url).flushdb()
    store = make_repo(tmp_path / "repo", url, offline="parquet")
    write_source(store.repo_path, days=2, riders=30)
    store.materialize(T0, NOW)
    report = store.verify(now=NOW)
    assert report.ok and [(v.checked, v.total, v.engine) for v in report.views] == [
        (30, 30, "local")
    ]
    redis.Redis.from_url(url).delete(rider_key(3))
    [view] = store.verify(now=NOW).views
    assert view.mismatches == 1 and view.examples[0].status == "NOT_FOUND"
    store.close()
