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


def test_local_driver_memory_is_a_quarter_of_the_machine_within_bounds():
    from granero.offline.spark_session import local_driver_memory

    gib = 2**30
    assert local_driver_memory(24 * gib) == "6g"
    assert local_driver_memory(2 * gib) == "1g"  # never below Spark's own default
    assert local_driver_memory(256 * gib) == "8g"  # a laptop-sized cap, the user's conf wins


@pytest.mark.spark
def test_the_local_session_runs_with_that_heap(spark):
    from granero.offline.spark_session import _physical_memory_bytes, local_driver_memory

    expected_gib = int(local_driver_memory(_physical_memory_bytes())[:-1])
    heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
    assert spark.conf.get("spark.driver.memory") == f"{expected_gib}g"
    assert heap > (expected_gib - 1) * 2**30  # the JVM really got it (max heap is a bit below)


@pytest.mark.spark
def test_the_session_loads_delta_from_the_maven_cache_without_a_resolver(spark):
    from granero.offline.spark_session import delta_jars_conf, maven_repository

    expected = delta_jars_conf(maven_repository())
    if "spark.jars" not in expected:
        pytest.skip("Delta's jars are not in the local Maven cache (make setup fetches them)")
    assert spark.conf.get("spark.jars") == expected["spark.jars"]
    assert spark.sparkContext._jsc.sc().conf().getOption("spark.jars.packages").isEmpty()
