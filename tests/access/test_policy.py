"""The permission rule, pure: ``Policy.readable`` against a brute-force oracle over random
permissions, callers and requests, and the hidden-name property (a refusal reads the same for
an unknown name as for a forbidden one)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero import Entity, FeatureService, FeatureView, Field, FileSource, Permission
from granero.access.permissions import Policy, Resource, grants
from granero.access.principal import Principal
from granero.definitions import compile_definitions
from granero.errors import PermissionDenied

ACTIONS = ["read_online", "read_offline", "push", "materialize", "apply"]
VIEW_TAGS = {"v0": {"team": "a"}, "v1": {"team": "b"}, "v2": {}}
FEATURES = {"v0": ["f0", "email"], "v1": ["f1", "phone"], "v2": ["f2"]}
PII = {("v0", "email"), ("v1", "phone")}
SERVICES = {"s0": [("v0", None)], "s1": [("v0", ["f0"]), ("v1", None)], "s2": [("v2", None), ("v1", ["f1"])]}


def repo(permissions: list[Permission]):
    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    views = {
        name: FeatureView(
            name=name, entities=[driver], ttl="1d", tags=VIEW_TAGS[name],
            source=FileSource(path=f"data/{name}", timestamp_field="event_timestamp"),
            features=[Field(name=f, dtype="int64", tags={"pii": "true"} if (name, f) in PII else {})
                      for f in features])
        for name, features in FEATURES.items()}
    services = [FeatureService(name=name, features=[views[v][fs] if fs else views[v] for v, fs in sel])
                for name, sel in SERVICES.items()]
    objects = [driver, *views.values(), *services, *permissions]
    return compile_definitions([(o.name, o) for o in objects])


PRINCIPALS = st.builds(Principal, st.sampled_from(["alice", "bob", "carol"]),
                       st.frozensets(st.sampled_from(["r1", "r2", "r3"]), max_size=2))
PERMISSIONS = st.lists(st.builds(
    lambda i, who, roles, actions, views, services, tags, pii: Permission(
        name=f"p{i}", principals=who, roles=roles or ([] if who else ["r1"]), actions=actions,
        feature_views=views, feature_services=services,
        resource_tags=tags if tags or views or services else {"team": "a"}, pii=pii),
    st.integers(0, 10**6), st.lists(st.sampled_from(["alice", "bob"]), max_size=1),
    st.lists(st.sampled_from(["r1", "r2"]), max_size=1),
    st.lists(st.sampled_from(ACTIONS[:3]), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(["v0", "v1", "v2", "*"]), max_size=2, unique=True),
    st.lists(st.sampled_from(["s0", "s1", "s2", "*"]), max_size=1),
    st.sampled_from([{}, {"team": "a"}, {"team": "b"}]), st.booleans()),
    max_size=4, unique_by=lambda p: p.name)
REFS = st.lists(st.sampled_from(
    ["v0:f0", "v0:email", "v0:*", "v1:f1", "v1:phone", "v1:*", "v2:f2", "v2:*", "vx:f0", "v0:nope"]),
    min_size=1, max_size=3)


def oracle_view(perms, who: Principal, action: str, view: str, pii: bool = False) -> bool:
    return any(action in p.actions and (p.pii or not pii)
               and (who.name in p.principals or who.roles & set(p.roles))
               and ("*" in p.feature_views or view in p.feature_views
                    or (p.resource_tags and p.resource_tags.items() <= VIEW_TAGS[view].items()))
               for p in perms)


def oracle_service(perms, who, action, service, pii=False) -> bool:
    return any(action in p.actions and (p.pii or not pii)
               and (who.name in p.principals or who.roles & set(p.roles))
               and ("*" in p.feature_services or service in p.feature_services)
               for p in perms)


def oracle_refs(perms, who, action, refs):
    kept, withheld = [], False
    for ref in refs:
        view, feature = ref.split(":")
        if view not in FEATURES or not oracle_view(perms, who, action, view):
            return None
        pii_ok = oracle_view(perms, who, action, view, pii=True)
        if feature == "*":
            allowed = [f for f in FEATURES[view] if (view, f) not in PII or pii_ok]
            withheld |= len(allowed) < len(FEATURES[view])
            kept += [f"{view}:{f}" for f in allowed]
        elif feature in FEATURES[view] and ((view, feature) not in PII or pii_ok):
            kept.append(ref)
        else:
            return None
    return (tuple(kept) if withheld else tuple(refs)) if kept else None


def oracle_service_read(perms, who, action, name):
    whole = oracle_service(perms, who, action, name)
    kept, withheld = [], False
    for view, features in SERVICES[name]:
        if not whole and not oracle_view(perms, who, action, view):
            return None
        for feature in features or FEATURES[view]:
            granted = (oracle_service(perms, who, action, name, pii=True)
                       or oracle_view(perms, who, action, view, pii=True))
            if (view, feature) in PII and not granted:
                withheld = True
            else:
                kept.append(f"{view}:{feature}")
    return (tuple(kept) if withheld else name) if kept else None


def outcome(policy: Policy, who, action, selection):
    try:
        return policy.readable(who, action, selection)
    except PermissionDenied:
        return None


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(PERMISSIONS, PRINCIPALS, st.sampled_from(ACTIONS[:2]), REFS)
def test_refs_read_matches_the_oracle(perms, who, action, refs):
    policy = Policy(repo(perms), deny_by_default=True)
    assert outcome(policy, who, action, tuple(refs)) == oracle_refs(perms, who, action, refs)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(PERMISSIONS, PRINCIPALS, st.sampled_from(ACTIONS[:2]), st.sampled_from(sorted(SERVICES)))
def test_service_read_matches_the_oracle(perms, who, action, service):
    policy = Policy(repo(perms), deny_by_default=True)
    assert outcome(policy, who, action, service) == oracle_service_read(perms, who, action, service)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(PERMISSIONS, PRINCIPALS, st.sampled_from(["v0", "v1", "v2"]), st.sampled_from(["s0", "s1", "s2"]))
def test_a_refusal_reads_the_same_for_unknown_and_forbidden_names(perms, who, view, service):
    """The hidden-name probe: swap the asked name for a placeholder and the messages are equal."""
    policy = Policy(repo(perms), deny_by_default=True)

    def refusal(selection, name):
        try:
            policy.readable(who, "read_online", selection)
        except PermissionDenied as error:
            return str(error).replace(name, "NAME")
        return None

    forbidden, unknown = refusal((f"{view}:f9",), view), refusal(("zz:f9",), "zz")
    assert forbidden == unknown and unknown is not None
    if refusal(service, service) is not None:
        assert refusal(service, service) == refusal("zz", "zz")


def test_no_permissions_allows_everything_unless_deny_by_default():
    defs = repo([])
    who = Principal("anyone")
    assert Policy(defs).readable(who, "read_online", ("v0:*",)) == ("v0:*",)
    assert Policy(defs).readable(who, "read_online", "s1") == "s1"
    with pytest.raises(PermissionDenied, match="anyone may not read_online feature 'v0:f0', or it does not exist"):
        Policy(defs, deny_by_default=True).readable(who, "read_online", ("v0:f0",))


def test_a_service_grant_covers_its_views_but_pii_needs_its_own_grant():
    perms = [Permission(name="p", roles=["m"], actions=["read_online"], feature_services=["s1"])]
    policy, who = Policy(repo(perms)), Principal("x", frozenset({"m"}))
    assert policy.readable(who, "read_online", "s1") == ("v0:f0", "v1:f1")
    with pytest.raises(PermissionDenied):
        policy.readable(who, "read_online", ("v1:f1",))
    pii = [perms[0].model_copy(update={"pii": True})]
    assert Policy(repo(pii)).readable(who, "read_online", "s1") == "s1"


def test_grants_by_tags_need_every_tag():
    perm = Permission(name="p", roles=["m"], actions=["push"], resource_tags={"team": "a", "tier": "1"})
    who = Principal("x", frozenset({"m"}))
    assert not grants(perm, who, "push", Resource("feature_view", "v", {"team": "a"}))
    assert grants(perm, who, "push", Resource("feature_view", "v", {"team": "a", "tier": "1", "z": "2"}))


def test_an_action_is_enforced_once_a_permission_grants_it():
    perms = [Permission(name="p", roles=["m"], actions=["read_online"], feature_services=["s0"])]
    policy, stranger = Policy(repo(perms)), Principal("x")
    view = policy.view("v0")
    assert policy.enforces("read_online") and not policy.enforces("apply")
    assert policy.allows(stranger, "apply", view) and not policy.allows(stranger, "read_online", view)
    assert not policy.may_see(stranger, view)
    assert policy.may_see(Principal("y", frozenset({"m"})), view)  # through the service s0
    assert not Policy(repo(perms), deny_by_default=True).allows(stranger, "apply", view)
