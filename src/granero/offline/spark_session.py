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
    }
    return {**defaults, **config.conf}


def get_spark(config: SparkConfig) -> SparkSession:
    """Return the active session, or build one from ``config``."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in spark_conf(config).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
