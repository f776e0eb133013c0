"""Fixtures of the freshness tests: the online tests' stores on the session's real redis-server,
and their real 3-node Redis Cluster."""

from tests.online.conftest import defs, online_url, own_redis, project, replay_store, store  # noqa: F401 (fixtures)
from tests.online.test_cluster import cluster_ports  # noqa: F401 (fixture)
