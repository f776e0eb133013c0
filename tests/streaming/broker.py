"""The local Kafka broker now lives in the product (``granero.streaming.local_broker``); this
name stays for the tests and bench scripts that import it from here."""

from granero.streaming.local_broker import Broker, broker_classpath, create_topic, produce, start_broker

__all__ = ["Broker", "broker_classpath", "create_topic", "produce", "start_broker"]
