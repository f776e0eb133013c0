"""The example repo's on-demand view (``feature_repo/dispatch.py``) in a training set."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from granero.feature_store import FeatureStore
from tests.conftest import DATA_END

pytestmark = pytest.mark.spark


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(a, 1.0)))


def test_dispatch_model_training_rows_carry_the_pickup_features(example_repo, spark):
    with FeatureStore(example_repo) as store:
        store.apply()
        assert store.describe("pickup").kind == "on_demand_feature_view"
        store.materialize_incremental(DATA_END, ["driver_hourly_stats"], sync_online=False)
        trips = pd.read_parquet(example_repo / "data" / "trips.parquet")
        frame = store.get_historical_features_pandas(trips, feature_service="dispatch_model", engine="local")
    assert list(frame.columns)[-4:] == ["driver_hourly_stats__conv_rate", "driver_hourly_stats__acc_rate",
                                        "pickup__pickup_distance_km", "pickup__expected_acceptance"]
    assert frame["driver_hourly_stats__acc_rate"].notna().any() and frame["driver_hourly_stats__acc_rate"].isna().any()
    for _, row in frame.iterrows():
        km = haversine_km(row["driver_lat"], row["driver_lon"], row["pickup_lat"], row["pickup_lon"])
        assert row["pickup__pickup_distance_km"] == pytest.approx(km, rel=1e-12, abs=1e-12)
        acceptance = row["driver_hourly_stats__acc_rate"] * 4.0 / (4.0 + km)
        assert row["pickup__expected_acceptance"] == pytest.approx(acceptance, rel=1e-12, nan_ok=True)


def test_granero_historical_writes_the_dispatch_training_set_and_its_manifest(example_repo, spark, tmp_path):
    import json

    from tests.offline.test_offline_cmds import invoke

    with FeatureStore(example_repo) as store:
        store.apply()
        store.materialize_incremental(DATA_END, ["driver_hourly_stats"], sync_online=False)
        registered = store.registered().on_demand_feature_views["pickup"].code.source_hash
    out = tmp_path / "dispatch"
    built = invoke("historical", "--entities", example_repo / "data" / "trips.parquet",
                   "--service", "dispatch_model", "--out", out, "--repo", example_repo)
    assert built.exit_code == 0, built.output
    frame = pd.read_parquet(out)
    assert len(frame) == 100 and frame["pickup__pickup_distance_km"].notna().all()
    manifest = json.loads((tmp_path / "dispatch.manifest.json").read_text())
    assert manifest["on_demand"] == {"pickup": registered}
    assert manifest["columns"][-2:] == ["pickup__pickup_distance_km", "pickup__expected_acceptance"]
