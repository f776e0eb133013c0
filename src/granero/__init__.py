"""Granero: a distributed feature store.

Importing ``granero`` loads the definition language only; Spark, Redis and gRPC load where they
are used.
"""

from granero.definitions import (
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    TableSource,
)
from granero.errors import GraneroError

__version__ = "0.1.0"

__all__ = [
    "Entity",
    "FeatureSelection",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "GraneroError",
    "TableSource",
    "__version__",
]


def __getattr__(name: str):  # lazy: the facade pulls in the registry and config machinery
    if name == "FeatureStore":
        from granero.feature_store import FeatureStore

        return FeatureStore
    raise AttributeError(name)
