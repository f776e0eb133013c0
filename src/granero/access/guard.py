"""The one place a call is judged: who is calling (authenticators) and what they may do (the
policy of the registry version being served). gRPC-free, so the serving interceptor and the
facade's checks share it.

The policy follows the registry: it is rebuilt when the served version changes, so a permission
applied with ``granero apply`` takes effect within ``serving.registry_refresh_seconds``, without
a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from granero.access.audit import AuditLog
from granero.access.config import AccessConfig, build_authenticators
from granero.access.permissions import Policy
from granero.access.principal import Credentials, Principal, authenticate
from granero.registry import RegistryVersion


class AccessGuard:
    def __init__(self, config: AccessConfig, registry: Callable[[], RegistryVersion]) -> None:
        """Reads the credential files now (ConfigError naming the file when one is bad)."""
        self.config = config
        self._registry = registry
        self._authenticators = build_authenticators(config)
        self._policy: tuple[int, Policy] | None = None
        self.audit = AuditLog(config.audit_log) if config.audit_log else None

    def principal(self, credentials: Credentials) -> Principal:
        """The caller, or Unauthenticated."""
        return authenticate(self._authenticators, credentials, self.config.admits_anonymous)

    def policy(self) -> Policy:
        """The policy of the current registry version (rebuilt only when the version changes)."""
        version = self._registry()
        cached = self._policy
        if cached is None or cached[0] != version.version:
            policy = Policy(version.definitions, self.config.deny_by_default, self.config.pii_tag)
            cached = self._policy = (version.version, policy)
        return cached[1]

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()
