"""Transport security through real TLS handshakes on 127.0.0.1: certificates are made in the test
(tests/serving/certs.py), the server is the real one reading the session's redis-server.

Refusals are checked against a control that differs only in the thing refused (same server,
same call), so a failure for another reason cannot pass for the refusal.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from granero.errors import ConfigError, GraneroError
from granero.serving.client import Client
from granero.serving.config import ServingConfig, TlsConfig
from granero.serving.server import ServerHandle, build_server
from granero.serving.servicer import FeatureServingServicer
from granero.serving.tls import ClientTls, PeerCertificate, peer_certificate
from tests.conftest import scaled
from tests.serving.certs import Authority, Issued, expired_window

pytestmark = pytest.mark.redis

FEATURES = ["driver_stats:conv_rate"]


def lookup(address: str, tls: ClientTls | None, **client: object) -> float:
    """conv_rate of driver 1 over a fresh connection (raises the client's GraneroError)."""
    with Client(address, timeout=scaled(5), connections=1, tls=tls, **client) as client_:
        return client_.get_online_features([{"driver_id": 1}], features=FEATURES).rows[0][0].value


def refused(address: str, tls: ClientTls | None) -> str:
    """The error text of a call that must fail at the handshake (UNAVAILABLE, not served)."""
    with pytest.raises(GraneroError, match="UNAVAILABLE") as caught:
        lookup(address, tls)
    return str(caught.value)


@pytest.fixture()
def ca() -> Authority:
    return Authority()


@pytest.fixture()
def tls_files(tmp_path: Path, ca: Authority) -> TlsConfig:
    cert, key = ca.server().write(tmp_path / "server", "tls")
    return TlsConfig(cert_file=str(cert), key_file=str(key))


def serving(store, **config: object) -> ServerHandle:
    return build_server(store, ServingConfig(port=0, **config))


@pytest.fixture()
def tls_server(store, tls_files: TlsConfig) -> Iterator[ServerHandle]:
    with serving(store, tls=tls_files) as handle:
        yield handle


def trusting(ca: Authority, folder: Path, **more: str) -> ClientTls:
    return ClientTls(ca_file=str(ca.write(folder / "trust", f"ca{id(ca)}")), **more)


# -- TLS ------------------------------------------------------------------------------------------


def test_a_tls_handshake_serves_features(tls_server, ca, tmp_path):
    assert lookup(f"localhost:{tls_server.port}", trusting(ca, tmp_path)) == 0.9


def test_a_client_trusting_another_ca_is_refused(tls_server, ca, tmp_path):
    address = f"localhost:{tls_server.port}"
    assert lookup(address, trusting(ca, tmp_path)) == 0.9  # control: the right CA is served
    refused(address, trusting(Authority("another CA"), tmp_path))


def test_a_plain_text_client_gets_nothing_from_a_tls_port(tls_server):
    refused(f"localhost:{tls_server.port}", None)


def test_the_server_name_must_match_unless_overridden(store, ca, tmp_path):
    cert, key = ca.server(("features.internal",)).write(tmp_path, "named")
    with serving(store, tls=TlsConfig(cert_file=str(cert), key_file=str(key))) as handle:
        address = f"127.0.0.1:{handle.port}"
        refused(address, trusting(ca, tmp_path))
        overridden = trusting(ca, tmp_path, server_name="features.internal")
        assert lookup(address, overridden) == 0.9


def test_a_client_refuses_an_expired_server_certificate(ca, tmp_path):
    """Granero's server will not serve an expired certificate (below), so a bare grpc server
    does; the control is the same server with a valid one (UNIMPLEMENTED: the handshake passed)."""
    codes = {}
    for name, issued in {"valid": ca.server(), "expired": ca.server(valid=expired_window())}.items():
        credentials = grpc.ssl_server_credentials([(issued.key, issued.cert)])
        server = grpc.server(futures.ThreadPoolExecutor(1))
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        try:
            with pytest.raises(GraneroError) as caught:
                lookup(f"localhost:{port}", trusting(ca, tmp_path))
            codes[name] = str(caught.value).split(": ")[1]
        finally:
            server.stop(0).wait()
    assert codes == {"valid": "UNIMPLEMENTED", "expired": "UNAVAILABLE"}


@pytest.mark.parametrize("problem", ["expired", "key of another certificate", "missing key",
                                     "not a certificate"])
def test_the_server_refuses_to_start_with_bad_files_naming_them(store, ca, tmp_path, problem):
    good = ca.server()
    cert, key = {
        "expired": ca.server(valid=expired_window()),
        "key of another certificate": Issued(good.cert, ca.server().key),
        "missing key": good,
        "not a certificate": Issued(b"-----BEGIN CERTIFICATE-----\nxx\n", good.key),
    }[problem].write(tmp_path, "bad")
    if problem == "missing key":
        key.unlink()
    with pytest.raises(ConfigError) as caught:
        serving(store, tls=TlsConfig(cert_file=str(cert), key_file=str(key)))
    named = key if problem in ("missing key", "key of another certificate") else cert
    assert str(named) in str(caught.value)
    assert caught.value.exit_code == 2


# -- mutual TLS -----------------------------------------------------------------------------------


class RecordsPeer(FeatureServingServicer):
    """Remembers the mTLS identity each GetServerInfo call came with."""

    peers: list[PeerCertificate | None]

    def GetServerInfo(self, request, context):  # noqa: N802 - the gRPC method's name
        self.peers.append(peer_certificate(context))
        return super().GetServerInfo(request, context)


@pytest.fixture()
def mtls(store, ca, tls_files, tmp_path) -> Iterator[tuple[ServerHandle, RecordsPeer]]:
    clients_ca = Authority("clients CA")
    files = tls_files.model_copy(update={"client_ca_file": str(clients_ca.write(tmp_path, "clients"))})
    config = ServingConfig(port=0, tls=files)
    servicer = RecordsPeer(store, config)
    servicer.peers = []
    with build_server(store, config, servicer=servicer) as handle:
        yield handle, servicer, clients_ca


def client_tls(ca: Authority, folder: Path, issued: Issued | None) -> ClientTls:
    if issued is None:
        return trusting(ca, folder)
    cert, key = issued.write(folder / "client", f"c{id(issued)}")
    return trusting(ca, folder, cert_file=str(cert), key_file=str(key))


def test_mtls_serves_a_client_with_a_certificate_of_the_client_ca(mtls, ca, tmp_path):
    handle, servicer, clients_ca = mtls
    issued = clients_ca.client("ranker", uri="spiffe://rides/ranker")
    tls = client_tls(ca, tmp_path, issued)
    assert lookup(f"localhost:{handle.port}", tls) == 0.9
    with Client(f"localhost:{handle.port}", timeout=scaled(5), tls=tls) as client:
        client.server_info()
    subject = x509.load_pem_x509_certificate(issued.cert).subject.rfc4514_string()
    assert subject == "O=granero tests,CN=ranker"
    assert servicer.peers == [PeerCertificate(subject=subject, common_name="ranker",
                                              sans=("spiffe://rides/ranker",))]


@pytest.mark.parametrize("certificate", ["none", "from another CA", "server CA's, not clients'"])
def test_mtls_refuses_a_client_without_a_certificate_of_the_client_ca(mtls, ca, tmp_path,
                                                                      certificate):
    handle, _, clients_ca = mtls
    address = f"localhost:{handle.port}"
    assert lookup(address, client_tls(ca, tmp_path, clients_ca.client("ok"))) == 0.9
    issued = {"none": None, "from another CA": Authority("rogue").client("ranker"),
              "server CA's, not clients'": ca.client("ranker")}[certificate]
    refused(address, client_tls(ca, tmp_path, issued))


def test_without_mtls_there_is_no_peer_certificate(store, tls_files, ca, tmp_path):
    config = ServingConfig(port=0, tls=tls_files)
    servicer = RecordsPeer(store, config)
    servicer.peers = []
    with build_server(store, config, servicer=servicer) as handle, \
            Client(f"localhost:{handle.port}", timeout=scaled(5), tls=trusting(ca, tmp_path)) as c:
        c.server_info()
    assert servicer.peers == [None]


# -- rotation -------------------------------------------------------------------------------------


def test_a_rotated_certificate_is_served_to_new_connections_without_restart(
        tls_server, tls_files, ca, tmp_path):
    address = f"localhost:{tls_server.port}"
    old, new = trusting(ca, tmp_path), trusting(next_ca := Authority("next CA"), tmp_path)
    with Client(address, timeout=scaled(5), connections=1, tls=old) as established:
        assert established.get_online_features([{"driver_id": 1}], features=FEATURES).rows
        renewed = (datetime.now(UTC) - timedelta(minutes=1),
                   datetime.now(UTC).replace(microsecond=0) + timedelta(days=30))
        next_ca.server(valid=renewed).write(Path(tls_files.cert_file).parent, "tls")
        assert lookup(address, new) == 0.9
        refused(address, old)
        # the connection made before the rotation keeps its session
        assert established.get_online_features([{"driver_id": 1}], features=FEATURES).rows
    assert tls_server.certificates.reloads == 1
    expiry = tls_server.servicer.metrics.registry.get_sample_value(
        "granero_serving_tls_certificate_expiry_timestamp_seconds")
    assert expiry == renewed[1].timestamp()  # the gauge follows the rotation


def test_rotation_follows_files_through_half_written_and_broken_states(
        tls_server, tls_files, ca, tmp_path, caplog):
    """Random rotation steps against a simple oracle: new connections are served by the last
    whole, valid pair written, whatever broken state the files are in now."""
    folder = Path(tls_files.cert_file).parent
    authorities = [ca, Authority("b"), Authority("c")]
    trust = {id(a): trusting(a, tmp_path) for a in authorities}
    served = ca
    rng = random.Random(15)
    steps = []
    with caplog.at_level(logging.WARNING, logger="granero.serving.tls"):
        for _ in range(14):
            step, issuer = rng.choice(STEPS), rng.choice(authorities)
            issued = issuer.server(valid=expired_window() if step == "expired" else None)
            state = _write_step(folder, step, issued, issuer)
            if state["cert"] is state["key"] and step not in ("expired", "truncated"):
                served = issuer
            steps.append(step)
            assert lookup(f"localhost:{tls_server.port}", trust[id(served)]) == 0.9, steps
    assert set(steps) == set(STEPS)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


STEPS = ["whole", "cert only", "key only", "truncated", "expired"]
_written: dict[Path, dict[str, object]] = {}


def _write_step(folder: Path, step: str, issued: Issued, issuer: Authority) -> dict[str, object]:
    """Write what ``step`` says; returns which Issued each file now comes from."""
    state = _written.setdefault(folder, {"cert": None, "key": None})
    if step in ("whole", "expired"):
        issued.write(folder, "tls")
        state.update(cert=issued, key=issued)
    elif step == "cert only":
        (folder / "tls.crt").write_bytes(issued.cert)
        state["cert"] = issued
    elif step == "key only":
        (folder / "tls.key").write_bytes(issued.key)
        state["key"] = issued
    else:
        (folder / "tls.crt").write_bytes(issued.cert[: len(issued.cert) // 2])
        state["cert"] = "truncated"
    return state


# -- which addresses may speak plain text ---------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_non_loopback_bind_without_tls_is_refused(store, host):
    with pytest.raises(ConfigError, match=r"refusing to serve plain text .*--insecure") as caught:
        serving(store, host=host)
    assert caught.value.exit_code == 2


def test_insecure_allows_plain_text_off_loopback_with_a_warning(store, caplog):
    with caplog.at_level(logging.WARNING, logger="granero.serving.tls"), \
            serving(store, host="0.0.0.0", insecure=True) as handle:
        assert lookup(f"127.0.0.1:{handle.port}", None) == 0.9
    assert any("PLAIN TEXT on 0.0.0.0" in r.getMessage() for r in caplog.records)


def test_tls_off_loopback_needs_no_flag(store, tls_files, ca, tmp_path):
    with serving(store, host="0.0.0.0", tls=tls_files) as handle:
        assert lookup(f"localhost:{handle.port}", trusting(ca, tmp_path)) == 0.9


# -- the plain-text health port -------------------------------------------------------------------


def test_the_health_port_answers_probes_in_plain_text_and_serves_nothing_else(store, tls_files):
    with serving(store, tls=tls_files, health_port=0) as handle, \
            grpc.insecure_channel(f"127.0.0.1:{handle.health_port}") as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        assert check(health_pb2.HealthCheckRequest(service="granero.liveness"),
                     timeout=scaled(5)).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(GraneroError, match="UNIMPLEMENTED"):
            lookup(f"127.0.0.1:{handle.health_port}", None)
        handle.stop(None)
        assert check(health_pb2.HealthCheckRequest(), timeout=scaled(5)).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING


# -- configuration --------------------------------------------------------------------------------


def test_tls_files_in_feature_store_yaml_are_taken_relative_to_the_repo(tmp_path):
    from granero.config import load_config

    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nserving:\n  tls: {cert_file: certs/tls.crt, key_file: /abs/tls.key}\n")
    tls = load_config(tmp_path).serving.tls
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        str(tmp_path.resolve() / "certs" / "tls.crt"), "/abs/tls.key", None)


def test_an_unknown_tls_field_is_refused_by_name(tmp_path):
    from granero.config import load_config

    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nserving:\n  tls: {cert_file: a, key_file: b, ca_file: c}\n")
    with pytest.raises(ConfigError, match="ca_file"):
        load_config(tmp_path)


# -- the CLI --------------------------------------------------------------------------------------


def test_serve_off_loopback_without_tls_exits_2_naming_the_way_out(serving_repo, store):
    from typer.testing import CliRunner

    from granero.cli.main import app

    result = CliRunner().invoke(app, ["serve", "-r", str(serving_repo), "--host", "0.0.0.0",
                                      "--port", "0"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert "refusing to serve plain text on 0.0.0.0" in said and "--insecure" in said


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_and_get_online_over_mtls_as_real_processes(serving_repo, store, ca, tmp_path,
                                                          workers):
    """``granero serve --tls-*`` in its own process(es), ``granero get-online --target --tls-*``
    against it: served with the client certificate, refused without it; the health port
    answers in plain text (shared by the workers like the main port)."""
    from typer.testing import CliRunner

    from granero.cli.main import app
    from tests.conftest import free_port

    health_port = free_port()

    clients_ca = Authority("clients")
    cert, key = ca.server().write(tmp_path, "server")
    client_cert, client_key = clients_ca.client("cli").write(tmp_path, "client")
    granero = str(Path(sys.executable).parent / "granero")
    process = subprocess.Popen(
        [granero, "serve", "-r", str(serving_repo), "--host", "0.0.0.0", "--port", "0", "--json",
         "--tls-cert", str(cert), "--tls-key", str(key),
         "--tls-client-ca", str(clients_ca.write(tmp_path, "clients")),
         "--workers", str(workers), "--health-port", str(health_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = json.loads(process.stdout.readline())["port"]
        args = ["get-online", "--target", f"localhost:{port}", "-f", "driver_stats:trips",
                "-e", "driver_id=1", "--json", "--tls-ca", str(ca.write(tmp_path))]
        served = CliRunner().invoke(app, [*args, "--tls-cert", str(client_cert),
                                          "--tls-key", str(client_key)])
        without = CliRunner().invoke(app, args)
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                               timeout=scaled(5))
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=scaled(30))
    finally:
        if process.poll() is None:
            process.kill()
    assert served.exit_code == 0, served.output
    assert json.loads(served.stdout)["rows"][0]["features"]["driver_stats__trips"]["value"] == 12
    assert without.exit_code == 7 and "UNAVAILABLE" in without.stderr
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert process.returncode == 0


def test_a_kubernetes_secret_update_is_served_without_restart(store, ca, tmp_path):
    """The kubelet's atomic writer: the files are symlinks through ``..data``, which is swapped
    to a new timestamped folder in one rename; the server follows the links."""
    mount = tmp_path / "secret"
    _publish(mount, "..2026_01_01_v1", ca.server())
    config = TlsConfig(cert_file=str(mount / "tls.crt"), key_file=str(mount / "tls.key"))
    for name in ("tls.crt", "tls.key"):
        (mount / name).symlink_to(f"..data/{name}")
    with serving(store, tls=config) as handle:
        address = f"localhost:{handle.port}"
        assert lookup(address, trusting(ca, tmp_path)) == 0.9
        renewed = Authority("renewed CA")
        _publish(mount, "..2026_02_01_v2", renewed.server())
        assert lookup(address, trusting(renewed, tmp_path)) == 0.9
        refused(address, trusting(ca, tmp_path))


def _publish(mount: Path, version: str, issued: Issued) -> None:
    """Write a version folder and point ``..data`` at it by an atomic rename, as the kubelet."""
    issued.write(mount / version, "tls")
    (mount / "..data_tmp").symlink_to(version)
    (mount / "..data_tmp").rename(mount / "..data")


# -- pure rules -----------------------------------------------------------------------------------


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.booleans())
def test_plain_text_is_allowed_on_exactly_the_loopback_addresses(address, bracketed):
    """Against the standard library's rule, for any IPv4 or IPv6 address, bracketed or not."""
    from granero.serving.tls import is_loopback, require_safe_transport

    host = f"[{address}]" if bracketed and address.version == 6 else str(address)
    assert is_loopback(host) is address.is_loopback
    config = ServingConfig(host=host)
    if address.is_loopback:
        require_safe_transport(config)
    else:
        with pytest.raises(ConfigError):
            require_safe_transport(config)
        require_safe_transport(config.model_copy(update={"insecure": True}), warn=False)


@pytest.mark.parametrize("host", ["localhost", "granero.internal", "0", ""])
def test_names_other_than_localhost_are_not_loopback(host):
    from granero.serving.tls import is_loopback

    assert is_loopback(host) is (host == "localhost")


def test_client_tls_problems_name_the_file_or_the_missing_half(tmp_path):
    with pytest.raises(ConfigError, match=f"ca_file {tmp_path}/nope.crt: cannot be read"):
        Client("localhost:1", tls=ClientTls(ca_file=str(tmp_path / "nope.crt")))
    with pytest.raises(ConfigError, match="needs its key"):
        Client("localhost:1", tls=ClientTls(cert_file=str(tmp_path / "c.crt")))


def test_the_client_ca_rotates_and_a_broken_one_is_never_served(mtls, ca, tmp_path, caplog):
    """A truncated client CA given to grpc would fail every handshake: it is refused and the
    current one stays; a whole new one is then required of new connections."""
    handle, _, clients_ca = mtls
    address = f"localhost:{handle.port}"
    ca_file = Path(handle.certificates.config.client_ca_file)
    before, after = clients_ca.client("before"), (next_ca := Authority("next clients")).client("x")
    ca_file.write_bytes(next_ca.pem[: len(next_ca.pem) // 2])
    with caplog.at_level(logging.WARNING, logger="granero.serving.tls"):
        assert lookup(address, client_tls(ca, tmp_path, before)) == 0.9
    assert any("client_ca_file" in r.getMessage() for r in caplog.records)
    ca_file.write_bytes(next_ca.pem)
    assert lookup(address, client_tls(ca, tmp_path, after)) == 0.9
    refused(address, client_tls(ca, tmp_path, before))
