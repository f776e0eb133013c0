"""Permissions are definitions: validated (file, definition, field named), discovered by the
loader, diffed by plan and versioned by the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from granero import FeatureStore
from granero.errors import DefinitionError
from tests.repo_builder import standard_repo

READERS = '''
from granero import Permission
readers = Permission(roles=["ranking"], actions=["read_online"], feature_services=["ranking"])
'''


def plan_error(tmp_path: Path, source: str) -> str:
    store = FeatureStore(standard_repo(tmp_path / "repo", permissions=source))
    with pytest.raises(DefinitionError) as caught:
        store.plan()
    return str(caught.value)


@pytest.mark.parametrize(("body", "field", "reason"), [
    ('roles=["r"], actions=["read_online"]', "(definition)", "selects at least one resource"),
    ('actions=["read_online"], feature_views=["*"]', "(definition)", "at least one caller or role"),
    ('roles=["r"], actions=[], feature_views=["*"]', "actions", "at least one action"),
    ('roles=["r"], actions=["delete"], feature_views=["*"]', "actions.0", "read_online"),
    ('roles=[" "], actions=["push"], feature_views=["*"]', "roles", "must not be blank"),
    ('roles=["r"], actions=["push"], feature_views=["a-b"]', "feature_views", "identifier"),
    ('roles=["r"], actions=["push"], feature_views=["*"], colour="red"', "colour", "Extra inputs"),
])
def test_invalid_permission_names_file_definition_and_field(tmp_path, body, field, reason):
    message = plan_error(tmp_path, f"from granero import Permission\nbad = Permission({body})\n")
    assert "permissions.py:2" in message and "Permission 'bad'" in message, message
    assert f"field {field!r}" in message and reason in message, message


@pytest.mark.parametrize(("field", "name"), [("feature_views", "driver_statz"),
                                             ("feature_services", "rankin")])
def test_unknown_resource_names_are_refused(tmp_path, field, name):
    source = f'from granero import Permission\nbad = Permission(roles=["r"], actions=["push"], {field}=["{name}"])\n'
    message = plan_error(tmp_path, source)
    assert "permissions.py:2" in message and f"field {field!r}" in message, message
    assert repr(name) in message and "known:" in message, message


def test_loader_discovers_plan_diffs_and_registry_versions(tmp_path):
    repo = standard_repo(tmp_path / "repo", permissions=READERS)
    store = FeatureStore(repo)
    plan = store.plan()
    assert [(c.kind, c.name, c.op) for c in plan.changes if c.kind == "permission"] == [
        ("permission", "readers", "added")]
    _, first = store.apply()
    assert store.registered().permissions["readers"].roles == ["ranking"]
    (repo / "permissions.py").write_text(READERS.replace('["ranking"], actions', '["ranking", "ops"], actions'))
    change = next(c for c in store.plan().changes if c.kind == "permission")
    assert change.op == "changed" and [(f.path, f.old, f.new) for f in change.fields] == [
        ("roles", ["ranking"], ["ranking", "ops"])]
    _, second = store.apply()
    assert second.version == first.version + 1
    assert store.registry.get_version(first.version).definitions.permissions["readers"].roles == ["ranking"]
    (repo / "permissions.py").unlink()
    assert [(c.name, c.op) for c in store.plan().changes] == [("readers", "removed")]
