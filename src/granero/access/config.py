"""``access:`` in feature_store.yaml: who may call (authentication) and how refusals default.

Each authentication backend owns its config class (tagged by ``type``); this module gathers them.
Without any backend every caller is ``anonymous``; with some, a caller must present credentials
one of them verifies unless ``anonymous: true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from granero.access.jwt_bearer import JwtAuthenticator, JwtConfig
from granero.access.mtls import MtlsAuthenticator, MtlsConfig
from granero.access.principal import Authenticator
from granero.access.tokens import TokenAuthenticator, TokensConfig

AuthenticationConfig = Annotated[TokensConfig | JwtConfig | MtlsConfig, Field(discriminator="type")]


class AccessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authentication: list[AuthenticationConfig] = []
    """Backends asked in order: ``tokens``, ``jwt``, ``mtls``."""
    anonymous: bool | None = None
    """Admit callers who present nothing, as ``anonymous``; default: only without backends."""
    deny_by_default: bool = False
    """The server refuses reads no permission grants, even when the repo declares none (the
    Python API's advisory checks enforce only the actions some permission grants)."""
    pii_tag: str = "pii"
    """The field tag (value ``true``) marking personal data."""
    audit_log: str | None = None
    """A JSON-lines file of every authorized and refused call; none without a path."""

    @property
    def admits_anonymous(self) -> bool:
        return not self.authentication if self.anonymous is None else self.anonymous

    def resolved(self, repo_path: Path) -> AccessConfig:
        """Relative file paths taken relative to the repo, as every path of the config is."""
        def under(path: str) -> str:
            return path if Path(path).is_absolute() else str((repo_path / path).resolve())

        backends = [b.model_copy(update={"file": under(b.file)}) if isinstance(b, TokensConfig) else
                    b.model_copy(update={"keys_file": under(b.keys_file)}) if isinstance(b, JwtConfig)
                    else b for b in self.authentication]
        audit = under(self.audit_log) if self.audit_log else None
        return self.model_copy(update={"authentication": backends, "audit_log": audit})


def build_authenticators(config: AccessConfig) -> list[Authenticator]:
    """One authenticator per configured backend, in order; files are read now (ConfigError)."""
    kinds = {TokensConfig: TokenAuthenticator, JwtConfig: JwtAuthenticator, MtlsConfig: MtlsAuthenticator}
    return [kinds[type(backend)](backend) for backend in config.authentication]
