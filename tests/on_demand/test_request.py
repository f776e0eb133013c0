"""Splitting a request into lookups and on-demand outputs (serving and training share it)."""

from __future__ import annotations

import pytest

from granero.errors import InvalidRequest, UnknownName
from granero.on_demand.request import split_request
from granero.repo.loader import load_repo
from tests.on_demand.repos import on_demand_repo

SERVICES = '''
from views import driver_stats
from on_demand import driver_score
from granero import FeatureService
ranking = FeatureService(features=[driver_score[["score"]], driver_stats[["conv_rate"]]])
'''


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return load_repo(on_demand_repo(tmp_path_factory.mktemp("split"), services=SERVICES))


def test_inputs_not_asked_for_are_hidden_lookups(defs):
    split = split_request(defs, ["driver_stats:conv_rate", "driver_score:score"])
    assert split.lookups == ["driver_stats:conv_rate", "driver_stats:trips"]
    assert split.hidden == ["driver_stats:trips"]
    assert [(od.view.name, od.features) for od in split.on_demand] == [("driver_score", ("score",))]
    assert split.output == [("driver_stats", "conv_rate"), ("driver_score", "score")]
    assert split.output_columns(False) == ["conv_rate", "score"]


def test_a_service_keeps_its_order_and_stars_expand(defs):
    split = split_request(defs, feature_service="ranking")
    assert split.output == [("driver_score", "score"), ("driver_stats", "conv_rate")]
    assert split.hidden == ["driver_stats:trips"]
    every = split_request(defs, ["driver_score:*", "driver_stats:*"])
    assert every.output_columns(True) == ["driver_score__score", "driver_score__trips_plus",
                                          "driver_stats__conv_rate", "driver_stats__trips"]
    assert every.hidden == []


def test_a_plain_request_has_no_on_demand_part(defs):
    split = split_request(defs, ["driver_stats:trips"])
    assert split.on_demand == [] and split.lookups == ["driver_stats:trips"] and split.hidden == []


def test_unknown_names_fail_like_plain_references(defs):
    with pytest.raises(UnknownName, match="on-demand feature view 'driver_score' has no feature 'nope'"):
        split_request(defs, ["driver_score:nope"])
    with pytest.raises(UnknownName, match="unknown feature service 'nope'"):
        split_request(defs, feature_service="nope")
    with pytest.raises(InvalidRequest, match="must look like 'view:feature'"):
        split_request(defs, ["driver_score"])
    with pytest.raises(InvalidRequest, match="not both or neither"):
        split_request(defs)
