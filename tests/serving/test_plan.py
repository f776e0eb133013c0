"""Request plans, the registry follower and the JSON log lines: the server's pure parts."""

from __future__ import annotations

import json
import logging

import pytest

from granero.errors import InvalidRequest, RegistryError
from granero.registry import FileRegistry
from granero.repo.loader import load_repo
from granero.serving.logs import JsonFormatter
from granero.serving.plan import plan_request
from granero.serving.snapshot import RegistryFollower
from tests.serving.conftest import write_repo


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return load_repo(write_repo(tmp_path_factory.mktemp("plan_repo"), "redis://127.0.0.1:1/0"))


def test_a_service_plan_names_its_features_in_service_order(defs):
    plan = plan_request(defs, "ranker", True)
    assert plan.feature_names == ["driver_stats__conv_rate", "route_stats__conv_rate",
                                  "route_stats__eta"]
    assert [v.view.name for v in plan.views] == ["driver_stats", "route_stats"]
    assert len(plan.encoders) == 3


def test_bare_names_that_collide_are_refused(defs):
    refs = ("driver_stats:trips", "route_stats:eta")
    assert plan_request(defs, refs, False).feature_names == ["trips", "eta"]
    with pytest.raises(InvalidRequest) as error:
        plan_request(defs, "ranker", False)
    assert str(error.value) == ("feature names ['conv_rate'] collide without view prefixes; "
                                "request full feature names")


def test_follower_swaps_in_a_new_version_only_when_due(tmp_path, defs):
    registry, now = FileRegistry(tmp_path / "registry"), [0.0]
    with pytest.raises(RegistryError, match="nothing applied yet"):
        RegistryFollower(registry, 5, clock=lambda: now[0])
    registry.write_version("p", defs)
    follower = RegistryFollower(registry, 5, clock=lambda: now[0])
    registry.write_version("p", defs.model_copy(update={"feature_services": {}}))
    now[0] = 4.9
    assert follower.current().version == 1
    now[0] = 5.0
    assert follower.current().version == 2
    assert follower.current().definitions.feature_services == {}


def test_follower_keeps_its_version_when_the_registry_turns_unreadable(tmp_path, defs, caplog):
    registry = FileRegistry(tmp_path / "registry")
    registry.write_version("p", defs)
    follower = RegistryFollower(registry, 0)
    (tmp_path / "registry" / "HEAD").write_text("000009-missing.json")
    with caplog.at_level(logging.WARNING, logger="granero.serving.snapshot"):
        assert follower.current().version == 1
    assert "still serving version 1" in caplog.text


def test_json_log_lines_carry_the_request_fields():
    record = logging.LogRecord("granero.serving", logging.DEBUG, __file__, 1, "request %s",
                               ("x",), None)
    record.fields = {"method": "GetOnlineFeatures", "code": "OK", "ms": 0.4}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request x" and line["level"] == "DEBUG"
    assert line["method"] == "GetOnlineFeatures" and line["code"] == "OK" and line["ms"] == 0.4
