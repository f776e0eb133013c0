"""``list features``, ``list views`` and ``describe`` show an aggregate view's served features like
any feature (name, output dtype) with what each computes; describe adds the hop and event columns."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from granero.cli.common import console
from granero.cli.main import app
from tests.aggregate_repo import AGGREGATE_VIEW
from tests.repo_builder import VIEWS, write_repo

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps at 80 columns without a terminal; the assertions read whole cells and lines."""
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def repo(tmp_path):
    plain = VIEWS.replace("from entities import driver\n", "").replace("entities=[driver]", 'entities=["driver"]')
    root = write_repo(tmp_path / "repo", views=AGGREGATE_VIEW, plain=plain)
    invoke("apply", "-r", str(root))
    return root


def test_list_features_shows_outputs_with_their_computation(repo):
    rows = json.loads(invoke("list", "features", "-r", str(repo), "--tag", "team=supply", "--json"))
    mine = {r["feature"]: r for r in rows if r["view"] == "driver_trips"}
    assert list(mine) == ["trips_1h", "fare_mean_1d", "distance_km_sum_1d"]  # not the event columns
    assert [r["dtype"] for r in mine.values()] == ["int64", "float64", "float64"]  # a float32 sums to float64
    assert mine["fare_mean_1d"]["aggregation"] == {"column": "fare", "function": "mean", "window": "1d",
                                                   "name": "fare_mean_1d"}
    assert mine["trips_1h"]["tags"] == {"team": "supply"}
    plain = [r for r in rows if r["view"] == "driver_stats"]
    assert [r["feature"] for r in plain] == ["conv_rate", "trips"] and {r["aggregation"] for r in plain} == {None}
    human = invoke("list", "features", "-r", str(repo))
    assert "mean(fare) over 1d" in human and "count(driver_id) over 1h" in human
    assert "sum(distance_km) over 1d" in human and "│ distance_km " not in human


def test_list_views_counts_served_features_and_shows_the_hop(repo):
    views = {v["name"]: v for v in json.loads(invoke("list", "views", "-r", str(repo), "--json"))}
    assert views["driver_trips"]["features"] == 3 and views["driver_trips"]["hop"] == "5m"
    assert views["driver_trips"]["ttl"] == "1445m"  # derived: the largest window (1d) + the hop
    assert views["driver_stats"]["hop"] is None and views["driver_stats"]["features"] == 2


def test_describe_an_aggregate_view(repo):
    described = json.loads(invoke("describe", "driver_trips", "-r", str(repo), "--json"))
    assert described["hop"] == "5m" and described["aggregations"][0]["window"] == "1h"  # as written
    assert described["derived"] == {
        "hop": "5m",
        "hop_declared": True,
        "served_features": [
            {"name": "trips_1h", "dtype": "int64", "function": "count", "column": "driver_id", "window": "1h"},
            {"name": "fare_mean_1d", "dtype": "float64", "function": "mean", "column": "fare", "window": "1d"},
            {"name": "distance_km_sum_1d", "dtype": "float64", "function": "sum", "column": "distance_km",
             "window": "1d"},
        ],
        "event_columns": [{"name": "fare", "dtype": "float64"}, {"name": "distance_km", "dtype": "float32"}],
    }
    human = invoke("describe", "driver_trips", "-r", str(repo))
    assert "aggregate view: hop 5m (declared), ttl 1445m (largest window + hop)" in human
    assert "event columns (stored offline per event, read by the aggregates, not served): fare float64, " \
           "distance_km float32" in human
    assert "served features" in human and "fare_mean_1d" in human
    assert "derived" not in json.loads(invoke("describe", "driver_stats", "-r", str(repo), "--json"))


def test_describe_shows_a_default_hop(tmp_path):
    root = write_repo(tmp_path / "repo", views=AGGREGATE_VIEW.replace('    hop="5m",\n', ""))
    invoke("apply", "-r", str(root))
    human = invoke("describe", "driver_trips", "-r", str(root))
    assert "aggregate view: hop 1m (default for its windows), ttl 1441m" in human
