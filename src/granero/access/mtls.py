"""The client certificate as a credential: mutual TLS already verified it (serving/tls.py), so the
certificate's names are the principal. Roles come from this config, by any of those names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from granero.access.principal import Credentials, Principal


class MtlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["mtls"] = "mtls"
    roles: dict[str, list[str]] = {}
    """Certificate name (common name or subject alternative name) -> roles it holds."""


class MtlsAuthenticator:
    """A verified client certificate names the principal (its common name, else its first SAN).

    A caller that also sent a bearer credential is judged by that credential alone: a bad token
    is refused, never quietly replaced by the certificate."""

    def __init__(self, config: MtlsConfig) -> None:
        self.config = config

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if credentials.bearer is not None or not credentials.peer_identities:
            return None
        roles = frozenset(role for name in credentials.peer_identities
                          for role in self.config.roles.get(name, ()))
        return Principal(credentials.peer_identities[0], roles, "mtls")
