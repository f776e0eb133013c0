"""Granero: a distributed feature store.

Importing ``granero`` loads the definition language only; Spark, Redis and gRPC load where they
are used.
"""

from granero.definitions import (
    Aggregation,
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    OnDemandFeatureView,
    Permission,
    RequestSource,
    TableSource,
    on_demand_feature_view,
)
from granero.errors import GraneroError

__version__ = "0.1.0"

__all__ = [
    "Aggregation",
    "Client",
    "Entity",
    "FeatureSelection",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "GraneroError",
    "KafkaSource",
    "OnDemandFeatureView",
    "Permission",
    "RequestSource",
    "TableSource",
    "__version__",
    "on_demand_feature_view",
]


def __getattr__(name: str):  # lazy: the facade and the gRPC client load their machinery on use
    if name == "FeatureStore":
        from granero.feature_store import FeatureStore

        return FeatureStore
    if name == "Client":
        from granero.serving.client import Client

        return Client
    raise AttributeError(name)
