"""A Spark session with Delta Lake starts, writes and reads a Delta table (offline from ~/.m2)."""

from __future__ import annotations

import pytest


@pytest.mark.spark
def test_delta_write_read_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "smoke")
    spark.range(5).write.format("delta").save(path)
    spark.range(5, 8).write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).count() == 8
    first = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert sorted(r.id for r in first.collect()) == [0, 1, 2, 3, 4]
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
