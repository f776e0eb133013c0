"""Transport security of the gRPC server and client: TLS, mutual TLS, certificate rotation.

Server: ``server_credentials`` reads the certificate, key and (mTLS) client CA from files and
hands grpc a fetcher that grpc calls before each new connection's handshake. The fetcher re-reads
the files and, when their bytes changed, gives grpc the new configuration: a rotated Kubernetes
Secret (or a replaced file) is served to new connections without a restart, while established
connections keep the certificate they started with. A rotation caught half-way (certificate and
key that do not match, a truncated file, an expired certificate) is refused with a warning and
the current pair stays until the files are whole again.

Plain text is the default only on a loopback address: ``require_safe_transport`` refuses a
non-loopback bind without TLS unless ``insecure`` says it is on purpose.

``peer_certificate`` gives the mTLS client's identity (subject and SANs) to the access layer.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ConfigDict

from granero.errors import ConfigError
from granero.serving.config import ServingConfig, TlsConfig

log = logging.getLogger(__name__)


# -- server ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pem:
    """The bytes of the server's files at one moment."""

    cert: bytes
    key: bytes
    client_ca: bytes | None


class CertificateFiles:
    """The server's certificate files, re-read whenever grpc asks before a handshake."""

    def __init__(self, config: TlsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.current = self._read()
        self.expires_at = self._check(self.current)
        """When the certificate served to new connections expires."""
        self.reloads = 0
        self._refused: str | None = None

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The new configuration when the files changed and are valid, else None (keep)."""
        try:
            with self._lock:
                return self._reload()
        except Exception:  # noqa: BLE001 - raised into grpc's core it would fail the handshake
            log.exception("reading the TLS certificate files failed; keeping the current ones")
            return None

    def _reload(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            pem = self._read()
            if pem == self.current:
                return None
            expires_at = self._check(pem)
        except ConfigError as error:
            if str(error) != self._refused:  # once per distinct problem, not per connection
                log.warning("TLS files not reloaded, the current certificate stays: %s", error)
                self._refused = str(error)
            return None
        self.current, self.expires_at = pem, expires_at
        self.reloads, self._refused = self.reloads + 1, None
        log.info("TLS certificate reloaded from %s", self.config.cert_file)
        return certificate_configuration(pem)

    def _check(self, pem: _Pem) -> datetime:
        """What grpc would choke on is refused here: a bad file would fail every handshake."""
        if pem.client_ca is not None:
            _load_certificates(pem.client_ca, "client_ca_file", self.config.client_ca_file)
        return check_key_pair(pem.cert, pem.key, self.config)

    def _read(self) -> _Pem:
        ca = self.config.client_ca_file
        return _Pem(_read(self.config.cert_file, "cert_file"), _read(self.config.key_file, "key_file"),
                    _read(ca, "client_ca_file") if ca else None)


def server_credentials(config: TlsConfig) -> tuple[grpc.ServerCredentials, CertificateFiles]:
    """Credentials that follow the files; raises ConfigError naming a missing or bad file."""
    files = CertificateFiles(config)
    credentials = grpc.dynamic_ssl_server_credentials(
        certificate_configuration(files.current), files.fetch,
        require_client_authentication=config.client_ca_file is not None)
    return credentials, files


def certificate_configuration(pem: _Pem) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(pem.key, pem.cert)], pem.client_ca)


def check_key_pair(cert_pem: bytes, key_pem: bytes, config: TlsConfig) -> datetime:
    """The key is the certificate's and the certificate is valid now (else ConfigError);
    returns when it expires."""
    leaf = _load_certificates(cert_pem, "cert_file", config.cert_file)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"serving.tls.key_file {config.key_file}: not an unencrypted PEM "
                          f"private key ({error})") from None
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise ConfigError(f"serving.tls.key_file {config.key_file} is not the key of the "
                          f"certificate in {config.cert_file}")
    now = datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ConfigError(f"serving.tls.cert_file {config.cert_file}: the certificate is valid "
                          f"from {leaf.not_valid_before_utc} to {leaf.not_valid_after_utc}, "
                          f"not now ({now:%Y-%m-%d %H:%M:%S} UTC)")
    return leaf.not_valid_after_utc


def _load_certificates(pem: bytes, field: str, path: str | None) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise ConfigError(f"serving.tls.{field} {path}: not PEM certificates ({error})") from None


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: str | None, field: str) -> bytes:
    try:
        return Path(path).read_bytes()  # type: ignore[arg-type]
    except OSError as error:
        raise ConfigError(f"serving.tls.{field} {path}: cannot be read ({error.strerror})") from None


# -- which addresses may speak plain text ---------------------------------------------------------


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``; a wildcard (0.0.0.0, ::) or any other name is not."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe_transport(config: ServingConfig, *, warn: bool = True) -> None:
    """Plain text off loopback only when asked for: ConfigError (exit 2) without TLS or
    ``insecure``, a warning with ``insecure`` (unless ``warn`` is False: the server will)."""
    if config.tls is not None or is_loopback(config.host):
        return
    if not config.insecure:
        raise ConfigError(
            f"refusing to serve plain text on {config.host}, which is not a loopback address: "
            f"give a certificate (serving.tls.cert_file and key_file, or --tls-cert and "
            f"--tls-key), or allow plain text on purpose (serving.insecure: true or --insecure)")
    if warn:
        log.warning("serving PLAIN TEXT on %s (insecure): anyone on the network can read and send "
                    "requests; use TLS outside a trusted network", config.host)


# -- the mTLS client's identity, for the access layer ---------------------------------------------


@dataclass(frozen=True)
class PeerCertificate:
    """Who the client's certificate says it is (only certificates the client CA signed get here)."""

    subject: str
    """RFC 4514 (last RDN first, as ``cryptography``'s ``rfc4514_string``), e.g.
    ``O=ml,CN=ranker``."""
    common_name: str | None
    sans: tuple[str, ...]
    """Subject alternative names as grpc reports them: DNS names, URIs, emails, IPs."""


def peer_certificate(context: grpc.ServicerContext) -> PeerCertificate | None:
    """The verified client certificate of this call's connection; None without mTLS."""
    auth = context.auth_context()
    if not auth.get("x509_subject"):
        return None
    first = auth.get("x509_common_name", [b""])[0].decode()
    return PeerCertificate(
        subject=auth["x509_subject"][0].decode(),
        common_name=first or None,
        sans=tuple(v.decode() for v in auth.get("x509_subject_alternative_name", [])),
    )


# -- client ---------------------------------------------------------------------------------------


class ClientTls(BaseModel):
    """How a client checks the server and, for mTLS, proves who it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str | None = None
    """CA bundle the server's certificate must chain to; None: the system's roots."""
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    """The name the server's certificate must carry when it differs from the target's host
    (e.g. connecting by IP, or through a tunnel)."""


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """Raises ConfigError naming a file that cannot be read, or a cert given without its key."""
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError("a client certificate needs its key: give both cert_file and key_file "
                          "(--tls-cert and --tls-key), or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_client_file(tls.ca_file, "ca_file"),
        private_key=_client_file(tls.key_file, "key_file"),
        certificate_chain=_client_file(tls.cert_file, "cert_file"))


def channel_options(tls: ClientTls | None) -> list[tuple[str, str]]:
    if tls is None or tls.server_name is None:
        return []
    return [("grpc.ssl_target_name_override", tls.server_name)]


def _client_file(path: str | None, field: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"client TLS {field} {path}: cannot be read ({error.strerror})") from None
