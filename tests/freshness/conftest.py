"""Fixtures of the freshness tests: the online tests' stores on the session's real redis-server,
and their real 3-node Redis Cluster."""

from tests.online.conftest import (  # noqa: F401 (fixtures)
    defs,
    example_url,
    materialized_repo,
    online_url,
    own_redis,
    project,
    replay_store,
    store,
)
from tests.online.test_cluster import cluster_ports  # noqa: F401 (fixture)
