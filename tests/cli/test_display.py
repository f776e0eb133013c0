"""How the CLI shows values: float32 by its shortest decimal, durations as a definition writes
them. Property tests against numpy's float32 and the definitions' own duration parser."""

from __future__ import annotations

import struct
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.cli.common import shortest_float32, shown_value
from granero.definitions.duration import format_duration, parse_duration

float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=2000, deadline=None)
@given(float32s)
def test_the_shortest_float32_is_that_float32_in_numpys_fewest_digits(value):
    shown = shortest_float32(value)
    assert np.float32(shown) == np.float32(value)  # the same float32, lossless
    assert float(str(np.float32(value))) == shown  # numpy's shortest repr, no more digits


@given(float32s)
def test_float32_features_are_shown_as_float32_and_nothing_else_changes(value):
    widened = struct.unpack("f", struct.pack("f", value))[0]  # what a float32 decodes to
    assert shown_value(widened, "float32") == float(str(np.float32(value)))
    assert shown_value([widened, None], "list<float32>") == [float(str(np.float32(value))), None]
    assert shown_value(widened, "float64") == widened
    assert shown_value(None, "float32") is None


def test_the_example_from_the_review():
    assert shown_value(1.2000000476837158, "float32") == 1.2


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_durations_read_back_as_the_same_duration(count, unit):
    duration = parse_duration(f"{count}{unit}")
    written = format_duration(duration)
    assert parse_duration(written) == duration
    if unit != "w":  # weeks are written in days
        assert len(written) <= len(f"{count}{unit}")


def test_durations_use_the_largest_whole_unit_up_to_days():
    assert [format_duration(timedelta(**kw)) for kw in (
        {"days": 2}, {"hours": 36}, {"seconds": 90}, {"weeks": 2}, {"milliseconds": 1500})] == [
        "2d", "36h", "90s", "14d", "1.5s"]
