"""The one place a SparkSession is configured: master, conf, and Delta Lake wiring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
"""Matches the pinned delta-spark/pyspark 4.0.1; resolved from the local Maven cache first."""


class SparkConfig(BaseModel):
    """``spark:`` in feature_store.yaml. A cluster is a different ``master``, never new code."""

    model_config = ConfigDict(extra="forbid")

    master: str = "local[*]"
    app_name: str = "granero"
    conf: dict[str, str] = {}


def spark_conf(config: SparkConfig) -> dict[str, str]:
    """Granero's defaults, then the user's conf on top (the user wins)."""
    defaults = {
        "spark.jars.packages": DELTA_PACKAGE,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Delta lists a table's files for every read and write by a job over its log state, in
        # 50 tasks by default: a fixed cost of every retrieval and re-materialization. A feature
        # view's log is small; raise this for tables with many thousands of files.
        "spark.databricks.delta.snapshotPartitions": "4",
        # PySpark otherwise walks the Python stack and makes ~5 JVM round trips per Column call
        # to record call sites for error messages: a third of a training retrieval's planning.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
    }
    return {**defaults, **config.conf}


def get_spark(config: SparkConfig) -> SparkSession:
    """Return the active session, or build one from ``config``."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    use_this_python_on_local_workers(config.master)
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in {**_local_defaults(config.master), **spark_conf(config)}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _local_defaults(master: str) -> dict[str, str]:
    """A local session listens on loopback only (Spark would pick the host's public interface),
    and its one JVM, driver and executor at once, gets a quarter of the machine's memory: Spark's
    1 GiB default runs out collecting a training set of a few hundred thousand rows."""
    if not master.startswith("local"):
        return {}
    return {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": local_driver_memory(_physical_memory_bytes()),
    }


def local_driver_memory(physical_bytes: int) -> str:
    """A quarter of the machine's memory, at least 1 GiB and at most 8 GiB, as Spark writes it."""
    return f"{min(8, max(1, physical_bytes // 4 // 2**30))}g"


def _physical_memory_bytes() -> int:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: Spark's own default
        return 4 * 2**30


def use_this_python_on_local_workers(master: str) -> None:
    """Local Python workers must run this interpreter (its venv holds granero), not PATH's python3.

    A cluster's executors use their own image's Python; set PYSPARK_PYTHON there.
    """
    import os
    import sys

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def get_job_spark(config: SparkConfig) -> SparkSession:
    """The session of a job script: under ``spark-submit`` the submit's master wins.

    ``spark-submit`` (and ``pyspark``) launch the JVM first and tell Python through
    ``PYSPARK_GATEWAY_PORT``; their ``--master`` must not be overridden by the repo's ``master``.
    Jars (Delta) must then come from ``spark-submit --packages``, as the JVM is already running.
    Run as plain Python, the job behaves like the library (``get_spark``).
    """
    import os

    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None or "PYSPARK_GATEWAY_PORT" not in os.environ:
        return active or get_spark(config)
    builder = SparkSession.builder.appName(config.app_name)
    for key, value in spark_conf(config).items():
        if key != "spark.jars.packages":
            builder = builder.config(key, value)
    return builder.getOrCreate()
