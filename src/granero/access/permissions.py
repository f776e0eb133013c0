"""What a principal may do: the registry's permissions evaluated, pure (no I/O, no gRPC).

A ``Policy`` is built from one registry version. It *enforces* an action once some permission
of the repo grants that action, or for every action with ``deny_by_default``; an action no
permission mentions stays open (a repo without permissions behaves as before access control, and
declaring who may read does not lock ``apply`` until someone is granted ``apply``). An enforced
action is allowed only where a permission grants it.

Reads (``read_online``, ``read_offline``) resolve the request's names themselves, so that a
refusal never tells an unknown name from a forbidden one: both get the same PermissionDenied.
Personal-data fields (tagged ``pii``) are withheld from a feature service or a ``view:*`` read
unless a permission with ``pii=True`` grants them; named one by one without that grant, they are
refused like any forbidden name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from granero.access.pii import is_pii, served
from granero.access.principal import Principal
from granero.definitions import Permission, RepoDefinitions
from granero.definitions.permission import ANY
from granero.errors import PermissionDenied

READ_CACHE_SIZE = 4096
Selection = tuple[str, ...] | str
"""Feature references (``view:feature``) or a feature service name, as requests give them."""


@dataclass(frozen=True)
class Resource:
    kind: str
    """``feature_view`` or ``feature_service``."""
    name: str
    tags: Mapping[str, str]


def grants(permission: Permission, principal: Principal, action: str, resource: Resource,
           pii: bool = False) -> bool:
    """Whether ``permission`` lets ``principal`` do ``action`` on ``resource`` (its PII too)."""
    return (action in permission.actions and (permission.pii or not pii)
            and _names_caller(permission, principal) and _selects(permission, resource))


def _names_caller(permission: Permission, principal: Principal) -> bool:
    return principal.name in permission.principals or not principal.roles.isdisjoint(permission.roles)


def _selects(permission: Permission, resource: Resource) -> bool:
    names = permission.feature_views if resource.kind == "feature_view" else permission.feature_services
    if ANY in names or resource.name in names:
        return True
    wanted = permission.resource_tags
    return bool(wanted) and all(resource.tags.get(key) == value for key, value in wanted.items())


class Policy:
    """The permissions of one registry version."""

    def __init__(self, defs: RepoDefinitions, deny_by_default: bool = False, pii_tag: str = "pii"):
        self.defs = defs
        self.permissions = list(defs.permissions.values())
        self.deny_by_default = deny_by_default
        self.granted_actions = frozenset(a for p in self.permissions for a in p.actions)
        self.pii_tag = pii_tag
        self.views: dict[str, Any] = {**getattr(defs, "on_demand_feature_views", {}), **defs.feature_views}
        """Feature views and on-demand views: both are read, and granted, as views."""
        self._services_of: dict[str, list[Resource]] = {}
        for service in defs.feature_services.values():
            for selection in service.features:
                self._services_of.setdefault(selection.view_name, []).append(
                    Resource("feature_service", service.name, service.tags))
        self.readable = functools.lru_cache(maxsize=READ_CACHE_SIZE)(self._readable)
        """``_readable``, remembered per (principal, action, selection): the same caller asking
        the same shape again pays a dict lookup (refusals are not remembered)."""

    def enforces(self, action: str) -> bool:
        return self.deny_by_default or action in self.granted_actions

    def allows(self, principal: Principal, action: str, resource: Resource, pii: bool = False) -> bool:
        if not self.enforces(action):
            return True
        return any(grants(p, principal, action, resource, pii) for p in self.permissions)

    def view(self, name: str) -> Resource | None:
        view = self.views.get(name)
        return None if view is None else Resource("feature_view", name, view.tags)

    def service(self, name: str) -> Resource | None:
        service = self.defs.feature_services.get(name)
        return None if service is None else Resource("feature_service", name, service.tags)

    def is_pii(self, view: Any, feature: str) -> bool:
        return is_pii(view, feature, self.pii_tag, self.views)

    def may_see(self, principal: Principal, resource: Resource) -> bool:
        """Listed and described only to callers granted some enforced action on it, or, for a
        view, on a service that selects it (a model's client describes its service's views);
        to everyone while no action is enforced."""
        enforced = [action for action in _ALL_ACTIONS if self.enforces(action)]
        if not enforced or any(self.allows(principal, action, resource) for action in enforced):
            return True
        return resource.kind == "feature_view" and any(
            self.may_see(principal, service) for service in self._services_of.get(resource.name, ()))

    def require(self, principal: Principal, action: str, resources: Sequence[Resource | None],
                what: str) -> None:
        """PermissionDenied unless every resource exists and ``action`` on it is allowed."""
        if not all(r is not None and self.allows(principal, action, r) for r in resources):
            raise denied(principal, action, what)

    def _readable(self, principal: Principal, action: str, selection: Selection) -> Selection:
        """The selection the caller may read: unchanged, or narrowed to refs without withheld
        PII. PermissionDenied (one message for unknown and forbidden names) otherwise."""
        if not self.enforces(action):
            return selection
        if isinstance(selection, str):
            return _ServiceRead(self, principal, action, selection).selection()
        return _RefsRead(self, principal, action, selection).selection()


_ALL_ACTIONS = ("read_online", "read_offline", "push", "materialize", "apply")


def denied(principal: Principal, action: str, what: str) -> PermissionDenied:
    return PermissionDenied(f"{principal.name} may not {action} {what}, or it does not exist")


class _ServiceRead:
    """A feature service read: the service's grant covers its views; else each view's does."""

    def __init__(self, policy: Policy, principal: Principal, action: str, name: str) -> None:
        self.policy, self.principal, self.action, self.name = policy, principal, action, name

    def selection(self) -> Selection:
        service = self.policy.defs.feature_services.get(self.name)
        resource = self.policy.service(self.name)
        if service is None or resource is None:
            raise self._denied()
        whole = self.policy.allows(self.principal, self.action, resource)
        kept, withheld = [], False
        for selection in service.features:
            view = self.policy.views[selection.view_name]
            view_resource = self.policy.view(view.name)
            if not whole and not self.policy.allows(self.principal, self.action, view_resource):
                raise self._denied()
            for feature in selection.features or served(view):
                if self._pii_withheld(view, feature, resource, view_resource):
                    withheld = True
                else:
                    kept.append(f"{view.name}:{feature}")
        if not kept:
            raise self._denied()
        return tuple(kept) if withheld else self.name

    def _pii_withheld(self, view: Any, feature: str, *resources: Resource | None) -> bool:
        if not self.policy.is_pii(view, feature):
            return False
        return not any(self.policy.allows(self.principal, self.action, r, pii=True) for r in resources)

    def _denied(self) -> PermissionDenied:
        return denied(self.principal, self.action, f"feature service {self.name!r}")


class _RefsRead:
    """``view:feature`` reads: each view granted, each named feature known and, if PII, granted;
    ``view:*`` drops the PII fields not granted."""

    def __init__(self, policy: Policy, principal: Principal, action: str, refs: Sequence[str]) -> None:
        self.policy, self.principal, self.action, self.refs = policy, principal, action, refs

    def selection(self) -> Selection:
        if not self.refs:
            return ()  # the servicer says what is wrong with an empty request
        kept, withheld = [], False
        for ref in self.refs:
            view_name, _, feature = ref.partition(":")
            view = self._readable_view(view_name, ref)
            if feature == "*":
                features = [f for f in served(view) if self._pii_granted(view, f)]
                withheld = withheld or len(features) < len(served(view))
                kept += [f"{view_name}:{f}" for f in features]
            elif feature in served(view) and self._pii_granted(view, feature):
                kept.append(ref)
            else:
                raise denied(self.principal, self.action, f"feature {ref!r}")
        if not kept:
            raise denied(self.principal, self.action, f"features {list(self.refs)!r}")
        return tuple(kept) if withheld else tuple(self.refs)

    def _readable_view(self, name: str, ref: str) -> Any:
        resource = self.policy.view(name)
        if resource is None or not self.policy.allows(self.principal, self.action, resource):
            raise denied(self.principal, self.action, f"feature {ref!r}")
        return self.policy.views[name]

    def _pii_granted(self, view: Any, feature: str) -> bool:
        if not self.policy.is_pii(view, feature):
            return True
        return self.policy.allows(self.principal, self.action, self.policy.view(view.name), pii=True)
