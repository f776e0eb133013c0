"""Typed, described columns: the features of a view and the join keys of an entity."""

from __future__ import annotations

from pydantic import field_validator

from granero.definitions.base import Model, check_identifier


class Field(Model):
    """One typed feature column."""

    name: str
    dtype: str
    """Checked by the enclosing definition, so that an error can name it (see granero.types)."""
    description: str = ""
    tags: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value:
            raise ValueError("a field needs a name")
        return check_identifier(value, "field name")
