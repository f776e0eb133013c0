"""The Python API's and CLI's checks: registry and offline actions, judged by the same policy as
the server. Advisory: they run in the caller's own process, with the caller's own access to the
registry files, the offline tables and Redis, so the storage's ACLs (bucket policies, file
modes, Redis ACLs) are the real guard; these checks keep honest callers inside what the repo
declares and make a refusal explain itself.

The caller is ``GRANERO_TOKEN`` verified by the configured authenticators when set, else the
operating-system user (no roles) — or whatever principal the program sets on ``check.principal``.
Where the server would withhold PII, these checks refuse instead (a training set does not
silently lose columns).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from functools import cached_property

from granero.access.config import AccessConfig, build_authenticators
from granero.access.permissions import Policy, Resource, denied
from granero.access.principal import Credentials, Principal, authenticate
from granero.definitions import RepoDefinitions
from granero.registry import Change, RegistryVersion

TOKEN_ENV = "GRANERO_TOKEN"
EVERYTHING = Resource("feature_view", "*", {})
"""What changing an entity or a permission needs: a grant on every view (``feature_views=["*"]``)."""


def local_principal(config: AccessConfig) -> Principal:
    token = os.environ.get(TOKEN_ENV)
    if token:
        return authenticate(build_authenticators(config), Credentials(token), anonymous=False)
    return Principal(getpass.getuser(), frozenset(), "local")


class AccessCheck:
    def __init__(self, config: AccessConfig) -> None:
        self.config = config
        self._policy: Policy | None = None

    @cached_property
    def principal(self) -> Principal:
        """Resolved on the first enforced check only (a token file is read then, not before)."""
        return local_principal(self.config)

    def policy(self, defs: RepoDefinitions) -> Policy:
        """Actions the repo's permissions grant are enforced; ``deny_by_default`` is the server's
        (jobs and CLIs sharing its config, such as the chart's apply hook, are not locked out).
        Built once per definitions object (one per registry version): lookups call this per request."""
        cached = self._policy
        if cached is None or cached.defs is not defs:
            cached = self._policy = Policy(defs, deny_by_default=False, pii_tag=self.config.pii_tag)
        return cached

    def require_read(self, defs: RepoDefinitions, action: str, features: list[str] | None,
                     feature_service: str | None) -> None:
        """PermissionDenied unless the whole selection, PII included, may be read."""
        policy = self.policy(defs)
        if not policy.enforces(action) or (features is None) == (feature_service is None):
            return
        asked = feature_service if feature_service is not None else tuple(features or ())
        if policy.readable(self.principal, action, asked) != asked:
            raise denied(self.principal, action, f"all of {asked!r} (it holds personal data)")

    def require_views(self, defs: RepoDefinitions, action: str, views: Iterable[str]) -> None:
        policy = self.policy(defs)
        if policy.enforces(action):
            for name in views:
                policy.require(self.principal, action, [policy.view(name)], f"feature view {name!r}")

    def require_apply(self, registered: RegistryVersion | None, new: RepoDefinitions,
                      changes: Iterable[Change]) -> None:
        """``apply`` on each changed view and service, judged by the *registered* permissions (a
        repo cannot grant itself the right to apply itself); entities and permissions need a
        grant on every view."""
        old = registered.definitions if registered else RepoDefinitions()
        policy = self.policy(old)
        if not policy.enforces("apply"):
            return
        for change in changes:
            resource = _changed(change.kind, change.name, old, new)
            if not policy.allows(self.principal, "apply", resource):
                raise denied(self.principal, "apply", f"{change.kind.replace('_', ' ')} {change.name!r}")


def _changed(kind: str, name: str, old: RepoDefinitions, new: RepoDefinitions) -> Resource:
    for defs in (new, old):
        views = {**getattr(defs, "on_demand_feature_views", {}), **defs.feature_views}
        if kind in ("feature_view", "on_demand_feature_view") and name in views:
            return Resource("feature_view", name, views[name].tags)
        if kind == "feature_service" and name in defs.feature_services:
            return Resource("feature_service", name, defs.feature_services[name].tags)
    return EVERYTHING
