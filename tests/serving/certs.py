"""Certificates made in the test (cryptography): a CA, and server or client certificates it signs.

EC P-256 keys: fast to generate (a fraction of a millisecond), as grpc's TLS accepts them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM."""

    cert: bytes
    key: bytes

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """``stem.crt`` and ``stem.key`` in ``folder`` (replaced in place if there)."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert.write_bytes(self.cert)
        key.write_bytes(self.key)
        return cert, key


class Authority:
    """A self-signed CA that issues leaf certificates."""

    def __init__(self, name: str = "granero test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _builder(self.name, self.name, self.key.public_key(),
                           *_validity(timedelta(days=1)))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        self.cert = builder.sign(self.key, hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, folder: Path, stem: str = "ca") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.crt"
        path.write_bytes(self.pem)
        return path

    def server(self, names: tuple[str, ...] = SERVER_NAMES, *,
               valid: tuple[datetime, datetime] | None = None) -> Issued:
        return self._issue(names[0], names, ExtendedKeyUsageOID.SERVER_AUTH, valid)

    def client(self, common_name: str, *, uri: str | None = None) -> Issued:
        sans = (uri,) if uri else ()
        return self._issue(common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(self, common_name: str, sans: tuple[str, ...], usage: x509.ObjectIdentifier,
               valid: tuple[datetime, datetime] | None) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "granero tests")])
        builder = _builder(subject, self.name, key.public_key(),
                           *(valid or _validity(timedelta(hours=1))))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [_general_name(n) for n in sans]), False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def expired_window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=2), now - timedelta(days=1)


def _validity(length: timedelta) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=5), now + length


def _builder(subject: x509.Name, issuer: x509.Name, public_key, not_before: datetime,
             not_after: datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after))


def _general_name(name: str) -> x509.GeneralName:
    if "://" in name:
        return x509.UniformResourceIdentifier(name)
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
