"""The public API is exactly what __all__ says, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import granero


def test_public_names():
    assert sorted(granero.__all__) == sorted([
        "Aggregation", "Client", "Entity", "FeatureSelection", "FeatureService", "FeatureStore", "FeatureView", "Field",
        "FileSource", "GraneroError", "KafkaSource", "OnDemandFeatureView", "Permission", "RequestSource",
        "TableSource", "__version__", "on_demand_feature_view",
    ])
    for name in granero.__all__:
        assert getattr(granero, name) is not None


def test_importing_definitions_loads_no_spark_redis_or_grpc():
    code = ("import sys, granero, granero.definitions, granero.config, granero.feature_store; "
            "print(sorted(m for m in ('pyspark', 'redis', 'grpc', 'py4j') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
