"""A CLI command that starts Spark prints Granero's output only; ``--verbose`` shows the JVM's.

Run as real subprocesses, since the JVM's console is what is under test. Delta's jars come from
the local Maven cache without a resolver pass, and the resolver's fallback is quiet too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from granero.feature_store import FeatureStore
from granero.offline.spark_session import (
    DELTA_JARS,
    DELTA_PACKAGE,
    SPARK_LOG_ENV,
    VERBOSE_ENV,
    delta_jars_conf,
    maven_jar,
    maven_repository,
)
from tests.conftest import scaled

JVM_NOISE = re.compile(r":: resolving dependencies ::|WARN|Ivy|ivy|log4j|SPARK_LOCAL_IP")
GRANERO = str(Path(sys.executable).parent / "granero")  # the installed console script


def granero(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (VERBOSE_ENV, "SPARK_LOCAL_IP")}
    return subprocess.run([GRANERO, *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=scaled(300))


def materialize(repo: Path, *flags: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = granero(*flags, "materialize", "2026-01-07T00:00:00Z", "2026-01-08T00:00:00Z",
                   "--views", "driver_hourly_stats", "--no-sync", "--repo", str(repo), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "driver_hourly_stats" in done.stdout
    return done


@pytest.mark.spark
@pytest.mark.slow
def test_spark_stays_quiet_by_default_even_through_the_resolver(example_repo, tmp_path):
    FeatureStore(example_repo).apply()
    log = tmp_path / "spark.log"
    no_jars = tmp_path / "empty-m2"  # forces spark.jars.packages: Ivy's report is the loudest
    done = materialize(example_repo, env={SPARK_LOG_ENV: str(log), "GRANERO_MAVEN_REPO": str(no_jars)})
    assert JVM_NOISE.findall(done.stderr) == [], done.stderr[-3000:]
    kept = log.read_text()
    assert ":: resolving dependencies ::" in kept and "incubator" in kept  # moved, not lost


@pytest.mark.spark
@pytest.mark.slow
def test_verbose_shows_the_jvm_output_on_stderr(example_repo, tmp_path):
    FeatureStore(example_repo).apply()
    log = tmp_path / "spark.log"
    done = materialize(example_repo, "--verbose", env={SPARK_LOG_ENV: str(log)})
    assert "log4j" in done.stderr and "WARN" in done.stderr
    assert ":: resolving dependencies ::" not in done.stderr  # the jars came from ~/.m2
    assert "resolves to a loopback address" not in done.stderr  # SPARK_LOCAL_IP on local masters
    assert not log.exists()


def test_delta_jars_come_from_the_maven_cache_when_all_are_there(tmp_path):
    assert delta_jars_conf(tmp_path) == {"spark.jars.packages": DELTA_PACKAGE}
    jars = [maven_jar(tmp_path, coordinate) for coordinate in DELTA_JARS]
    for jar in jars[:-1]:
        jar.parent.mkdir(parents=True)
        jar.write_bytes(b"")
    assert delta_jars_conf(tmp_path) == {"spark.jars.packages": DELTA_PACKAGE}  # one missing
    jars[-1].parent.mkdir(parents=True)
    jars[-1].write_bytes(b"")
    assert delta_jars_conf(tmp_path) == {"spark.jars": ",".join(map(str, jars))}
    assert jars[0] == tmp_path / "io/delta/delta-spark_2.13/4.0.1/delta-spark_2.13-4.0.1.jar"


def test_delta_jars_are_the_packages_runtime_closure_minus_pysparks_own_jars():
    """What Ivy would resolve for DELTA_PACKAGE (compile-scope dependencies in its pom), less what
    pyspark already ships: so spark.jars loads exactly what spark.jars.packages would add."""
    import xml.etree.ElementTree as ElementTree

    import pyspark

    pom = maven_jar(maven_repository(), DELTA_PACKAGE).with_suffix(".pom")
    if not pom.is_file():
        pytest.skip(f"{pom} not in the local Maven cache (make setup fetches it)")
    shipped = {jar.name for jar in (Path(pyspark.__file__).parent / "jars").iterdir()}
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    needed = {DELTA_PACKAGE}
    for dep in ElementTree.parse(pom).getroot().iterfind("m:dependencies/m:dependency", ns):
        coordinate = ":".join(dep.findtext(f"m:{tag}", namespaces=ns) for tag in
                              ("groupId", "artifactId", "version"))
        artifact = coordinate.split(":")[1]
        if dep.findtext("m:scope", "compile", ns) == "compile" and not any(
                name.startswith(f"{artifact}-") for name in shipped):
            needed.add(coordinate)
    assert needed == set(DELTA_JARS)


def test_a_jvm_that_fails_to_start_says_why_though_its_output_went_to_the_log(tmp_path):
    script = ("from granero.offline.spark_session import SparkConfig, get_spark\n"
              "get_spark(SparkConfig(master='local[1]'))\n")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), SPARK_LOG_ENV: str(tmp_path / "log")}
    env.pop(VERBOSE_ENV, None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=scaled(120))
    assert done.returncode != 0
    assert "Spark's JVM did not start" in done.stderr and "no-java" in done.stderr, done.stderr[-2000:]
