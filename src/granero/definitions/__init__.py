"""The declarative definition language. Importing it loads pydantic only: no Spark, Redis or gRPC."""

from granero.definitions.aggregation import Aggregation
from granero.definitions.base import Definition
from granero.definitions.entity import Entity
from granero.definitions.feature_service import FeatureSelection, FeatureService
from granero.definitions.feature_view import FeatureView
from granero.definitions.field import Field
from granero.definitions.on_demand import OnDemandFeatureView, RequestSource, on_demand_feature_view
from granero.definitions.permission import Permission
from granero.definitions.repo_definitions import RepoDefinitions, compile_definitions
from granero.definitions.source import FileSource, Source, TableSource
from granero.definitions.stream_source import KafkaSource, StreamSource

__all__ = [
    "Aggregation",
    "Definition",
    "Entity",
    "FeatureSelection",
    "FeatureService",
    "FeatureView",
    "Field",
    "FileSource",
    "KafkaSource",
    "OnDemandFeatureView",
    "Permission",
    "RepoDefinitions",
    "RequestSource",
    "Source",
    "StreamSource",
    "TableSource",
    "compile_definitions",
    "on_demand_feature_view",
]
