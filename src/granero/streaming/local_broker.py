"""A single-node Kafka broker for demos and tests, like the embedded Redis: KRaft (broker and
controller in one JVM) on loopback ports, on the machine's Java; nothing is mocked.

Kafka's jars come from the local Maven cache (``make setup`` runs ``mvn dependency:get`` for
``kafka_2.13``). The classpath is resolved by ``mvn dependency:build-classpath`` over a one-
dependency POM (offline; online only if the goal's plugin is missing) once, and cached under
``~/.cache/granero`` by the POM's content (Maven takes tens of seconds on a busy machine).
Producing and the readiness probe use confluent-kafka (the ``dev`` extra).

Whoever starts a broker stops it (``Broker.stop``, or ``with start_broker(...)``): a start that
fails or is interrupted stops its own process before raising.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from granero.errors import ConfigError, GraneroError

KAFKA_VERSION = "4.1.1"
"""Keep equal to ``KAFKA`` in the Makefile (the jars ``make setup`` fetches); a test checks."""
BROKER_POM = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Granero's local broker classpath: Kafka's server and its runtime dependencies from ~/.m2. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>granero.local</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""
CACHE = Path(os.environ.get("GRANERO_CACHE", Path.home() / ".cache" / "granero"))


def broker_classpath() -> str:
    """Kafka's server classpath from ~/.m2, cached by the POM's content."""
    digest = hashlib.sha256(BROKER_POM.encode()).hexdigest()[:12]
    cached = CACHE / f"kafka-broker-{digest}.classpath"
    if cached.is_file() and all(Path(jar).is_file() for jar in cached.read_text().split(":")):
        return cached.read_text()
    CACHE.mkdir(parents=True, exist_ok=True)
    pom = CACHE / f"kafka-broker-{digest}.pom.xml"
    pom.write_text(BROKER_POM)
    partial = cached.with_suffix(".partial")
    _resolve_classpath(["mvn", "-q", "dependency:build-classpath", "-f", str(pom), f"-Dmdep.outputFile={partial}"])
    partial.replace(cached)
    return cached.read_text()


def _resolve_classpath(command: list[str]) -> None:
    """Maven offline first; online only when a plugin of the goal is not cached yet."""
    try:
        if subprocess.run([*command, "-o"], capture_output=True, timeout=600).returncode == 0:
            return
        subprocess.run(command, check=True, capture_output=True, timeout=1200)
    except (OSError, subprocess.SubprocessError) as error:
        raise ConfigError(f"cannot resolve the Kafka {KAFKA_VERSION} broker's jars with Maven ({error}); "
                          "run `make setup` (it fetches org.apache.kafka:kafka_2.13 into ~/.m2)") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_properties(directory: Path, port: int, controller_port: int) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={directory / 'data'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "",
    ])


@dataclass
class Broker:
    """A running broker: where it listens, and its process."""

    bootstrap_servers: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(timeout=30)


def cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64 that never starts with "-", which the
    storage tool would take for an option (1 id in 64 did; Kafka's own ids skip those too)."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


def start_broker(directory: Path, timeout: float) -> Broker:
    """Format storage and start ``kafka.Kafka``; returns once a client lists its topics."""
    port, controller_port = _free_port(), _free_port()
    properties = directory / "server.properties"
    properties.write_text(_server_properties(directory, port, controller_port))
    java = ["java", "-Xmx512m", "-cp", broker_classpath()]
    cluster = cluster_id()
    log = directory / "kafka.log"
    subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(properties)],
                   check=True, capture_output=True, timeout=timeout)
    with log.open("wb") as out:
        process = subprocess.Popen([*java, "kafka.Kafka", str(properties)], stdout=out,
                                   stderr=subprocess.STDOUT)
    broker = Broker(f"127.0.0.1:{port}", process, log)
    try:
        _wait_until_ready(broker, timeout)
    except BaseException:  # failed, or Ctrl-C while waiting: leave no JVM behind
        broker.stop(timeout=10)
        raise
    return broker


def _wait_until_ready(broker: Broker, timeout: float) -> None:
    KafkaException, AdminClient = _kafka_client("KafkaException", "admin.AdminClient")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers, "log_level": 0})
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except KafkaException:
            if broker.process.poll() is not None or time.monotonic() > deadline:
                tail = broker.log.read_text(errors="replace")[-3000:]
                raise GraneroError(f"Kafka did not start on {broker.bootstrap_servers}:\n{tail}") from None


def _kafka_client(*names: str) -> list[Any]:
    """confluent-kafka's classes by dotted name; a missing package says which extra to install."""
    try:
        import confluent_kafka
        import confluent_kafka.admin  # noqa: F401
    except ImportError:
        raise ConfigError("the local Kafka broker needs confluent-kafka: pip install 'granero[dev]'") from None
    found = []
    for name in names:
        owner = confluent_kafka
        for part in name.split("."):
            owner = getattr(owner, part)
        found.append(owner)
    return found


def create_topic(bootstrap_servers: str, topic: str, partitions: int, timeout: float) -> None:
    """A topic with ``partitions`` partitions, waited for."""
    AdminClient, NewTopic = _kafka_client("admin.AdminClient", "admin.NewTopic")
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=timeout)


def produce(bootstrap_servers: str, topic: str, messages: list[bytes], timeout: float,
            keys: list[bytes] | None = None) -> None:
    """Send every message and wait until the broker acknowledged all of them."""
    (Producer,) = _kafka_client("Producer")
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5,
                         "enable.idempotence": True})
    for index, message in enumerate(messages):
        producer.produce(topic, value=message, key=keys[index] if keys else None)
        producer.poll(0)
    left = producer.flush(timeout)
    if left:
        raise GraneroError(f"{left} messages to {topic} were not acknowledged in {timeout} s")
