"""On-demand views in the registry commands: apply, plan, describe and list features."""

from __future__ import annotations

import json

from granero.feature_store import FeatureStore
from tests.cli.test_registry_cmds import invoke
from tests.on_demand.repos import ON_DEMAND, on_demand_repo


def test_apply_describe_and_list_features_show_on_demand_views(tmp_path):
    repo = on_demand_repo(tmp_path / "repo")
    assert invoke("apply", "-r", str(repo)).exit_code == 0
    described = json.loads(invoke("describe", "driver_score", "-r", str(repo), "--json").stdout)
    assert described["kind"] == "on_demand_feature_view" and described["code"]["ref"] == "on_demand:score"
    assert described["inputs"][0] == {"view": "driver_stats", "features": ["conv_rate", "trips"]}
    listed = json.loads(invoke("list", "features", "-r", str(repo), "--json").stdout)
    outputs = {(row["view"], row["feature"], row["dtype"]) for row in listed}
    assert {("driver_score", "score", "float64"), ("driver_score", "trips_plus", "int64")} <= outputs
    (repo / "on_demand.py").write_text(ON_DEMAND.replace("SCALE = 2.0", "SCALE = 4.0"))
    planned = invoke("plan", "-r", str(repo))
    assert "on_demand_feature_view driver_score (changed)" in planned.stdout and "code.source_hash" in planned.stdout
    with FeatureStore(repo) as store:
        assert [f.name for f in store.list_features(owner="") if f.view == "driver_score"] == ["score", "trips_plus"]
