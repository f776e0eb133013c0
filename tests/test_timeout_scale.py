"""The suite's one timeout helper: waits grow with the machine's load, or as the environment says."""

from __future__ import annotations

import os

from tests.conftest import scaled, timeout_scale


def test_the_environment_sets_the_scale(monkeypatch):
    monkeypatch.setenv("GRANERO_TEST_TIMEOUT_SCALE", "2.5")
    assert timeout_scale() == 2.5
    assert scaled(180) == 450


def test_without_it_the_scale_follows_the_load_per_core_within_bounds(monkeypatch):
    monkeypatch.delenv("GRANERO_TEST_TIMEOUT_SCALE", raising=False)
    for load, expected in ((0.3, 1.0), (6.0, 3.0), (40.0, 10.0)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        assert timeout_scale() == expected


def test_pytest_timeouts_per_test_limit_is_scaled_too(request):
    import pytest

    base = request.config.getoption("timeout", default=None)
    if not base:
        pytest.skip("run without pytest-timeout's --timeout")
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None and base <= marker.args[0] <= 10 * base


def test_hypothesis_deadlines_are_scaled_too(monkeypatch):
    from datetime import timedelta

    from hypothesis import settings

    from tests.conftest import hypothesis_profile

    monkeypatch.setenv("GRANERO_TEST_TIMEOUT_SCALE", "3")
    assert hypothesis_profile().deadline == timedelta(milliseconds=600)
    assert settings.get_current_profile_name() == "granero"  # loaded by tests/conftest.py
