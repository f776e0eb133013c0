"""Permissions: who may do what to which feature views and services, declared in the repo.

A permission grants ``actions`` to callers named in ``principals`` or holding one of ``roles``,
on the resources it selects: feature views and feature services by name (``"*"`` for all of
them) or by tags (every tag must match). ``pii=True`` also grants the personal-data fields of
those resources. Evaluation lives in ``granero.access.permissions``; this module is pure data.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator, model_validator

from granero.definitions.base import Definition, check_identifier

Action = Literal["read_online", "push", "read_offline", "apply", "materialize"]
ACTIONS: tuple[str, ...] = ("read_online", "push", "read_offline", "apply", "materialize")
ANY = "*"


class Permission(Definition):
    """``Permission(roles=["fraud"], actions=["read_online"], feature_services=["fraud_model"])``."""

    kind: ClassVar[str] = "permission"

    principals: list[str] = []
    """Caller names as the authenticators give them (token name, JWT subject, certificate name)."""
    roles: list[str] = []
    """Roles or groups; a caller holding any of them is granted."""
    actions: list[Action]
    feature_views: list[str] = []
    feature_services: list[str] = []
    resource_tags: dict[str, str] = {}
    """Views and services whose tags include all of these."""
    pii: bool = False
    """Also grants the fields tagged as personal data of the selected resources."""

    @field_validator("actions")
    @classmethod
    def _some_actions(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"a permission grants at least one action of {list(ACTIONS)}")
        return value

    @field_validator("principals", "roles")
    @classmethod
    def _no_blank_names(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("names must not be blank")
        return value

    @field_validator("feature_views", "feature_services")
    @classmethod
    def _resource_names(cls, value: list[str]) -> list[str]:
        return [name if name == ANY else check_identifier(name, "resource name") for name in value]

    @model_validator(mode="after")
    def _someone_and_something(self) -> Permission:
        if not self.principals and not self.roles:
            raise ValueError("principals or roles: a permission names at least one caller or role")
        if not (self.feature_views or self.feature_services or self.resource_tags):
            raise ValueError("feature_views, feature_services or resource_tags: a permission "
                             "selects at least one resource (use ['*'] for all)")
        return self
