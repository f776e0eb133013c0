"""Fixtures of the online store tests: definitions built in Python, stores on the session's real
redis-server (a database of their own, a fresh project per test so keys never collide), and
servers of their own for the tests that stop or break Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import RepoDefinitions, compile_definitions
from granero.definitions.refs import ViewFeatures, resolve_features
from granero.feature_store import FeatureStore
from granero.online.redis import RedisSettings, RedisStore
from tests.conftest import DATA_END, EXAMPLE_REPO, free_port, generate_example_data, start_redis

# Spark runs executor Python with `python3` from PATH unless told otherwise; sync tasks need
# this interpreter (pyarrow, granero). See the report: get_spark should set this itself.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

NOW = datetime(2026, 1, 8, tzinfo=UTC)
FRESH = NOW - timedelta(minutes=5)


def define() -> RepoDefinitions:
    """Two entities (one with a composite key), two views of the driver with different ttls."""
    driver = Entity(join_keys={"driver_id": "int64"})
    route = Entity(join_keys={"zone": "int32", "vehicle": "string"})
    source = FileSource(path="data/none", timestamp_field="ts")
    stats = FeatureView(
        entities=[driver],
        source=source,
        ttl="1h",
        features=[
            Field(name="conv_rate", dtype="float64"),
            Field(name="trips", dtype="int64"),
            Field(name="tier", dtype="string"),
        ],
    )
    daily = FeatureView(
        entities=[driver],
        source=source,
        ttl="2d",
        features=[Field(name="rating", dtype="float32")],
    )
    routes = FeatureView(
        entities=[route],
        source=source,
        ttl="1d",
        features=[Field(name="eta", dtype="float64")],
    )
    return compile_definitions(
        [
            ("driver", driver),
            ("route", route),
            ("stats", stats),
            ("daily", daily),
            ("routes", routes),
        ]
    )


@pytest.fixture(scope="session")
def defs() -> RepoDefinitions:
    return define()


def request(defs: RepoDefinitions, *refs: str) -> list[ViewFeatures]:
    return resolve_features(defs, features=list(refs))


@pytest.fixture(scope="session")
def online_url(redis_url: str) -> str:
    """The session's redis-server, on a database of its own."""
    return redis_url.rsplit("/", 1)[0] + "/3"


@pytest.fixture
def project() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(online_url: str, project: str) -> Iterator[RedisStore]:
    """A store on the shared server with key expiry on (as in production)."""
    store = RedisStore(RedisSettings(online_url), project)
    yield store
    store.close()


@pytest.fixture
def replay_store(online_url: str, project: str) -> Iterator[RedisStore]:
    """A store that keeps rows past their ttl, to replay data at a fixed ``NOW``."""
    store = RedisStore(RedisSettings(online_url, expire_keys=False), project)
    yield store
    store.close()


class RedisServer:
    """A redis-server of a test's own, on a fixed port, that can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_redis(self.directory, self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_url(redis_url: str) -> str:
    """The session's redis-server, on a database of the example repo's own (emptied first)."""
    url = redis_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def materialized_repo(tmp_path_factory: pytest.TempPathFactory, spark, example_url: str) -> Path:
    """feature_repo/ with small generated data, applied and materialized up to DATA_END, which
    syncs every online view into Redis (rows kept past their ttl so they replay at DATA_END)."""
    repo = tmp_path_factory.mktemp("example") / "feature_repo"
    shutil.copytree(EXAMPLE_REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    generate_example_data(repo, days=2, drivers=10, customers=10, trips=20)
    config = (repo / "feature_store.yaml").read_text()
    online = f"online_store: {{type: redis, url: '{example_url}', expire_keys: false}}\nspark:"
    (repo / "feature_store.yaml").write_text(
        re.sub(r"online_store:.*?\nspark:", online, config, flags=re.S)
    )
    with FeatureStore(repo) as store:
        store.apply()
        store.materialize(DATA_END - timedelta(days=2), DATA_END)
    return repo
