"""The one place a SparkSession is configured: master, conf, Delta Lake wiring, and the JVM's console.

Delta's jars come straight from the local Maven cache (``~/.m2``, filled by ``make setup``) as
``spark.jars`` when they are all there: no Ivy resolver pass, no resolution report, no network.
Only when one is missing does Spark resolve ``spark.jars.packages`` itself.

The JVM writes its own chatter to stderr (log4j warnings, Ivy's report, the JDK's incubator
notice). A quiet session (the default) sends the JVM's stderr to a log file instead, so a CLI
user sees Granero's output only; ``GRANERO_VERBOSE=1`` (``granero --verbose``) leaves it on the
terminal. Errors are unaffected: they reach Python through py4j and are translated there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from granero.errors import GraneroError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
"""Matches the pinned delta-spark/pyspark 4.0.1; resolved from the local Maven cache first."""

DELTA_JARS = (DELTA_PACKAGE, "io.delta:delta-storage:4.0.1")
"""DELTA_PACKAGE and its runtime dependencies that pyspark's own jars do not already hold."""

STREAM_JARS = (
    "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0",
    "org.apache.spark:spark-token-provider-kafka-0-10_2.13:4.0.0",
    "org.apache.kafka:kafka-clients:3.9.0",
    "org.apache.commons:commons-pool2:2.12.0",
    "org.apache.spark:spark-avro_2.13:4.0.0",
)
"""Spark's Kafka connector (4.0.0: 4.0.1's token-provider POM is not served) with the runtime
dependencies pyspark's jars lack, and spark-avro for ``from_avro``; added for streaming only."""

FAIR_POOLS = Path(__file__).parent.parent / "streaming" / "fair_scheduler.xml"
"""The scheduler pools of stream queries (``granero_online`` first, then ``granero_durable``)."""

VERBOSE_ENV = "GRANERO_VERBOSE"
SPARK_LOG_ENV = "GRANERO_SPARK_LOG"


class SparkConfig(BaseModel):
    """``spark:`` in feature_store.yaml. A cluster is a different ``master``, never new code."""

    model_config = ConfigDict(extra="forbid")

    master: str = "local[*]"
    app_name: str = "granero"
    conf: dict[str, str] = {}


def spark_conf(config: SparkConfig, streaming: bool = False) -> dict[str, str]:
    """Granero's defaults, then the user's conf on top (the user wins); ``streaming`` adds the
    Kafka connector's jars."""
    jars = delta_jars_conf(maven_repository())
    defaults = {
        **(with_stream_jars(jars, maven_repository()) if streaming else jars),
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
    if streaming:  # online stream queries' tasks before durable ones' (streaming/fair_scheduler.xml)
        defaults |= {"spark.scheduler.mode": "FAIR", "spark.scheduler.allocation.file": str(FAIR_POOLS)}
    return {**defaults, **config.conf}


def get_spark(config: SparkConfig, streaming: bool = False) -> SparkSession:
    """Return the active session, or build one from ``config`` (with the Kafka connector when
    ``streaming``)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    use_this_python_on_local_workers(config.master)
    conf = {**_local_defaults(config.master), **spark_conf(config, streaming)}
    if not verbose():
        _launch_quiet_jvm(config, conf)
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def maven_repository() -> Path:
    """The local Maven repository ``mvn dependency:get`` fills (``make setup`` does)."""
    return Path(os.environ.get("GRANERO_MAVEN_REPO", Path.home() / ".m2" / "repository"))


def delta_jars_conf(repository: Path) -> dict[str, str]:
    """``spark.jars`` from the local Maven cache when every Delta jar is there, else the package
    for Spark's resolver (which downloads what is missing and prints its report)."""
    jars = [maven_jar(repository, coordinate) for coordinate in DELTA_JARS]
    if all(jar.is_file() for jar in jars):
        return {"spark.jars": ",".join(map(str, jars))}
    return {"spark.jars.packages": DELTA_PACKAGE}


def with_stream_jars(conf: dict[str, str], repository: Path) -> dict[str, str]:
    """``conf`` (Delta's jars) plus the streaming jars: local files when all are in the Maven
    cache, else packages for Spark's resolver."""
    jars = [maven_jar(repository, coordinate) for coordinate in STREAM_JARS]
    if "spark.jars" in conf and all(jar.is_file() for jar in jars):
        return {"spark.jars": ",".join([conf["spark.jars"], *map(str, jars)])}
    packages = [DELTA_PACKAGE, STREAM_JARS[0], STREAM_JARS[-1]]
    return {"spark.jars.packages": ",".join(packages)}


def maven_jar(repository: Path, coordinate: str) -> Path:
    """Where Maven keeps ``group:artifact:version``'s jar."""
    group, artifact, version = coordinate.split(":")
    return repository.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.jar")


def verbose() -> bool:
    """Whether the JVM may write to the terminal (``granero --verbose`` sets the variable)."""
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def spark_log_path() -> Path:
    """Where a quiet session's JVM output goes (appended; one file for every session of the user)."""
    import tempfile

    default = Path(tempfile.gettempdir()) / f"granero-spark-{os.getuid()}.log"
    return Path(os.environ.get(SPARK_LOG_ENV, default))


def _launch_quiet_jvm(config: SparkConfig, conf: dict[str, str]) -> None:
    """Start the driver JVM (as pyspark would) with its stderr going to the log file.

    pyspark launches the JVM on the first SparkContext and offers no switch for its stderr, but
    ``SparkContext._ensure_initialized`` takes a gateway launched beforehand; the session built
    next reuses it. A JVM already running (an earlier session of this process) is left alone.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    spark_conf = SparkConf().setMaster(config.master).setAppName(config.app_name).setAll(list(conf.items()))
    path = spark_log_path()
    with path.open("ab") as log:  # the child keeps its own copy of the descriptor
        start = log.tell()
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": log, "stderr": log})
        except Exception as error:  # the reason is in the log, which the user does not see
            raise GraneroError(f"Spark's JVM did not start ({error}); its output, from {path}:\n"
                               f"{_tail(path, start)}") from None
    SparkContext._ensure_initialized(gateway=gateway, conf=spark_conf)


def _tail(path: Path, start: int, limit: int = 4000) -> str:
    with path.open("rb") as log:
        log.seek(start)
        return log.read().decode(errors="replace")[-limit:]


def _local_defaults(master: str) -> dict[str, str]:
    """A local session listens on loopback only (Spark would pick the host's public interface),
    and its one JVM, driver and executor at once, gets a quarter of the machine's memory: Spark's
    1 GiB default runs out collecting a training set of a few hundred thousand rows."""
    if not master.startswith("local"):
        return {}
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM as it starts
    return {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": local_driver_memory(_physical_memory_bytes()),
    }


def local_driver_memory(physical_bytes: int) -> str:
    """A quarter of the machine's memory, at least 1 GiB and at most 8 GiB, as Spark writes it."""
    return f"{min(8, max(1, physical_bytes // 4 // 2**30))}g"


def _physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: Spark's own default
        return 4 * 2**30


def use_this_python_on_local_workers(master: str) -> None:
    """Local Python workers must run this interpreter (its venv holds granero), not PATH's python3.

    A cluster's executors use their own image's Python; set PYSPARK_PYTHON there.
    """
    import sys

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def get_job_spark(config: SparkConfig, streaming: bool = False) -> SparkSession:
    """The session of a job script: under ``spark-submit`` the submit's master wins.

    ``spark-submit`` (and ``pyspark``) launch the JVM first and tell Python through
    ``PYSPARK_GATEWAY_PORT``; their ``--master`` must not be overridden by the repo's ``master``.
    Jars (Delta) must then come from ``spark-submit --packages`` or ``--jars``, as the JVM is
    already running.
    Run as plain Python, the job behaves like the library (``get_spark``).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None or "PYSPARK_GATEWAY_PORT" not in os.environ:
        return active or get_spark(config, streaming)
    builder = SparkSession.builder.appName(config.app_name)
    for key, value in spark_conf(config, streaming).items():
        if key not in ("spark.jars", "spark.jars.packages"):
            builder = builder.config(key, value)
    return builder.getOrCreate()
