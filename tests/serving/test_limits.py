"""serving.limits: oversized names, reference lists, batches and messages are refused before any
work, and nothing a client sends is echoed whole, neither in a status message (which must fit
gRPC's metadata limit) nor in a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from granero.config import RepoConfig
from granero.serving.config import ServingConfig
from granero.serving.limits import ServingLimits, shorten
from granero.serving.logs import JsonFormatter
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from tests.serving.conftest import MAX_BATCH

pytestmark = pytest.mark.redis

LIMITS = ServingLimits()
LONGEST_LOG_LINE = 8192


# -- shorten --------------------------------------------------------------------------------------


@settings(max_examples=500, derandomize=True, database=None)
@given(text=st.text(max_size=3000), limit=st.integers(128, 2000))
def test_shorten_keeps_the_head_within_the_limit_and_says_how_much_was_cut(text, limit):
    short = shorten(text, limit)
    assert len(short.encode()) <= limit
    if len(text.encode()) <= limit:
        assert short == text
    else:
        head, _, note = short.rpartition("... [")
        assert text.startswith(head) and note == f"{len(text) - len(head)} more characters cut]"


# -- on a real server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub(server) -> Iterator[FeatureServingStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield FeatureServingStub(channel)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The server's log as the JSON lines ``granero serve`` writes."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("granero")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=60)
    return error.value


def lookup(refs: list[str], **fields: Any) -> pb.GetOnlineFeaturesRequest:
    return pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=refs), **fields)


DRIVER = [pb.EntityRow(keys={"driver_id": Value(int64_val=1)})]
HUGE = {"ascii": "x" * 8192, "non-ascii": "é" * 4096, "emoji": "\U0001f600" * 2048}


@pytest.mark.parametrize("name", list(HUGE.values()), ids=list(HUGE))
@pytest.mark.parametrize("where", ["ref", "view:feature", "service", "describe"])
def test_an_8kb_name_is_invalid_argument_naming_the_limit(stub, name, where):
    if where == "describe":
        error = refused(stub.DescribeFeatureView, pb.DescribeFeatureViewRequest(name=name))
    elif where == "service":
        error = refused(stub.GetOnlineFeatures,
                        pb.GetOnlineFeaturesRequest(feature_service=name, entities=DRIVER))
    else:
        ref = name if where == "ref" else f"driver_stats:{name}"
        error = refused(stub.GetOnlineFeatures, lookup(["driver_stats:trips", ref],
                                                       entities=DRIVER))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "over serving.limits.max_name_length 256" in error.details()
    assert len(error.details().encode()) <= LIMITS.max_error_bytes


@pytest.mark.parametrize("value", list(HUGE.values()), ids=list(HUGE))
def test_a_huge_key_value_is_echoed_shortened(stub, value, log_lines):
    request = lookup(["driver_stats:trips"],
                     entities=[pb.EntityRow(keys={"driver_id": Value(string_val=value)})])
    error = refused(stub.GetOnlineFeatures, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith("entity row 0: join key 'driver_id' of view "
                                      "'driver_stats' must be int64, got str")
    assert error.details().endswith("more characters cut]")
    assert len(error.details().encode()) <= LIMITS.max_error_bytes
    assert 0 < max(map(len, log_lines.getvalue().splitlines())) <= LONGEST_LOG_LINE


def test_a_20mb_request_is_refused_unread(stub, log_lines):
    error = refused(stub.GetOnlineFeatures, lookup(["v:" + "x" * 20_000_000], entities=DRIVER))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(error.details()) < 200
    assert max(map(len, log_lines.getvalue().splitlines()), default=0) <= LONGEST_LOG_LINE


def test_a_3mb_reference_within_the_message_limit_is_refused_by_name_length(stub, log_lines):
    error = refused(stub.GetOnlineFeatures, lookup(["v:" + "x" * 3_000_000], entities=DRIVER))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("features.refs[0] is 3000002 characters long, over "
                                      "serving.limits.max_name_length 256: 'v:xxx")
    assert 0 < max(map(len, log_lines.getvalue().splitlines())) <= LONGEST_LOG_LINE


def test_too_many_references_are_refused_before_they_are_resolved(stub):
    refs = ["nope:x"] * (LIMITS.max_refs + 1)
    error = refused(stub.GetOnlineFeatures, lookup(refs, entities=DRIVER))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "1001 feature references exceed serving.limits.max_refs 1000"


def test_an_oversized_key_column_is_refused_before_it_is_decoded(stub):
    stamps = [0] * MAX_BATCH + [2**62]  # the last one does not decode: never reached
    request = lookup(["driver_stats:trips"],
                     entity_columns={"driver_id": Value(timestamp_list_val={"val": stamps})})
    error = refused(stub.GetOnlineFeatures, request)
    assert error.details() == (f"batch of {MAX_BATCH + 1} entity rows exceeds "
                               f"max_batch_size {MAX_BATCH}")


# -- configuration --------------------------------------------------------------------------------


def test_limits_are_configured_under_serving_and_the_old_batch_size_still_works():
    config = RepoConfig.model_validate({
        "project": "p", "serving": {"limits": {"max_name_length": 64, "max_refs": 5}}})
    assert (config.serving.limits.max_name_length, config.serving.limits.max_refs) == (64, 5)
    old = ServingConfig.model_validate({"max_batch_size": 7})
    assert old.limits.max_batch_size == old.max_batch_size == 7
    assert ServingConfig.model_validate_json(old.model_dump_json()) == old
    with pytest.raises(ValidationError, match="max_batch_size is given twice"):
        ServingConfig.model_validate({"max_batch_size": 7, "limits": {"max_batch_size": 8}})
    with pytest.raises(ValidationError, match="max_nam"):
        ServingConfig.model_validate({"limits": {"max_nam": 7}})
