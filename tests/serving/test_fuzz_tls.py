"""The fuzz and load paths over mutual TLS: the same oracles as tests/serving/test_fuzz.py (no
request ever gets UNKNOWN or INTERNAL; valid requests are answered per entity row) with every
call going through a TLS handshake and a client certificate.

The fuzz tests are imported from test_fuzz.py and run here against this module's ``server``,
``stub`` and ``raw_channel`` fixtures; the long lookup fuzz (1,500 examples) stays plain text
only, since the transport does not change what the servicer sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from granero.serving.client import Client
from granero.serving.config import ServingConfig, TlsConfig
from granero.serving.server import ServerHandle, build_server
from granero.serving.tls import ClientTls, channel_credentials
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from tests.conftest import scaled
from tests.serving.certs import Authority
from tests.serving.conftest import MAX_BATCH
from tests.serving.test_fuzz import (  # noqa: F401 - collected here, against TLS fixtures
    test_a_body_that_does_not_parse_is_invalid_argument,
    test_a_request_of_valid_parts_is_answered_for_every_entity_row,
    test_random_bytes_never_get_internal,
    test_the_other_methods_answer_ok_not_found_or_invalid_argument,
    unexpected_errors,
)

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def client_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsConfig, ClientTls]]:
    folder: Path = tmp_path_factory.mktemp("mtls")
    servers, clients = Authority("servers"), Authority("clients")
    cert, key = servers.server().write(folder, "server")
    client_cert, client_key = clients.client("fuzzer").write(folder, "client")
    yield (TlsConfig(cert_file=str(cert), key_file=str(key),
                     client_ca_file=str(clients.write(folder, "clients"))),
           ClientTls(ca_file=str(servers.write(folder, "servers")), cert_file=str(client_cert),
                     key_file=str(client_key), server_name="localhost"))


@pytest.fixture(scope="module")
def server(store, client_tls) -> Iterator[ServerHandle]:
    config = ServingConfig(port=0, max_batch_size=MAX_BATCH, max_workers=8, tls=client_tls[0])
    with build_server(store, config) as handle:
        yield handle


@pytest.fixture(scope="module")
def raw_channel(server, client_tls) -> Iterator[grpc.Channel]:
    tls = client_tls[1]
    options = [("grpc.ssl_target_name_override", tls.server_name)]
    with grpc.secure_channel(server.address, channel_credentials(tls), options) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(raw_channel) -> Any:
    return FeatureServingStub(raw_channel)


def test_concurrent_clients_over_mtls_are_all_served(server, client_tls):
    """8 threads x 40 lookups, each thread a client of its own (its own handshakes)."""
    before = unexpected_errors(server)

    def lookups(thread: int) -> list[int | None]:
        with Client(server.address, timeout=scaled(10), connections=2, tls=client_tls[1]) as c:
            rows = [{"driver_id": 1 + (thread + i) % 4} for i in range(4)]
            return [c.get_online_features(rows, features=["driver_stats:trips"]).rows[0][0].value
                    for _ in range(40)]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lookups, range(8)))
    trips = {1: 12, 2: 3, 3: None, 4: None}  # driver 3 is stale, 4 absent
    assert [set(a) for a in answers] == [{trips[1 + t % 4]} for t in range(8)]
    assert unexpected_errors(server) == before
