"""Streaming: feature views fed continuously from a stream source (Kafka, or a Delta table).

    config       ``streaming:`` in feature_store.yaml (checkpoints, dead letters, trigger)
    parse        a stream source as a streaming DataFrame; Kafka messages parsed, failures marked
    micro_batch  one micro-batch written exactly once: dead letters, online, landed, offline
    job          one query per view (``granero stream``, ``spark_jobs/stream.py``)

Streaming is another writer, not another store: rows go through the batch pipeline's filter,
transformations and casts (``offline.materialize.table_rows``), then through the same online
sync (write-if-newer) and offline table (an idempotent ``append``). Importing this package loads
nothing heavy (``granero.config`` imports its config).
"""
