"""Who is calling: the principal an authenticator vouches for, and what the caller presented.

Every authentication backend (tokens, JWT, mTLS) is one module behind ``Authenticator``: it
answers the principal for credentials it recognises, None for credentials that are not its kind,
and raises ``Unauthenticated`` for credentials of its kind that do not verify (a revoked token, an
expired JWT). ``authenticate`` asks them in order; a bearer credential nobody recognises is
refused, never downgraded to anonymous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from granero.errors import Unauthenticated


@dataclass(frozen=True)
class Principal:
    """A verified caller: its name and the roles (or groups) it holds."""

    name: str
    roles: frozenset[str] = frozenset()
    via: str = ""
    """Which authenticator vouched for it (``token``, ``jwt``, ``mtls``, ``anonymous``, ``local``)."""


ANONYMOUS = Principal("anonymous", frozenset(), "anonymous")


@dataclass(frozen=True)
class Credentials:
    """What a caller presented: a bearer credential and/or a verified client certificate."""

    bearer: str | None = None
    peer_identities: tuple[str, ...] = ()
    """Names from a client certificate the TLS layer verified (common name, then SANs)."""


class Authenticator(Protocol):
    def authenticate(self, credentials: Credentials) -> Principal | None:
        """The principal, None when the credentials are not this backend's kind, or
        Unauthenticated when they are and do not verify."""
        ...


def authenticate(authenticators: Sequence[Authenticator], credentials: Credentials,
                 anonymous: bool) -> Principal:
    """The first principal an authenticator vouches for; ANONYMOUS only for a caller who presented
    nothing, and only when ``anonymous`` callers are admitted."""
    for authenticator in authenticators:
        principal = authenticator.authenticate(credentials)
        if principal is not None:
            return principal
    if credentials.bearer is not None:
        raise Unauthenticated("the bearer credential is not a known token or a verifiable JWT")
    if anonymous:
        return ANONYMOUS
    raise Unauthenticated("credentials required: send 'authorization: Bearer <token>' metadata"
                          " or a client certificate")
