"""The online store: the latest feature values per entity, in Redis, for low-latency lookups.

    encoding   the bytes in Redis: key layout and the versioned value format (pure)
    store      the OnlineStore protocol, and building the configured store
    redis      RedisStore (standalone or Cluster): write-if-newer script, one-round-trip reads
    embedded   the private redis-server of ``online_store: {type: embedded}``
    sync       Spark executors writing a view's latest offline rows (driver side: sync_view)
    lookup     validated, ttl-checked lookups with a status per value (what serving calls)
    verify     online values compared with the offline point-in-time values

Nothing is imported here, so importing a config class never loads redis, numpy or pyarrow.
"""
