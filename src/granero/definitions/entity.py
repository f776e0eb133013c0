"""Entities: the things features describe, identified by one or more typed join keys."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from granero.definitions.base import Definition, check_identifier
from granero.types import DType


class Entity(Definition):
    """An entity such as a driver, or a (customer, product) pair with a composite key.

    ``join_keys`` maps each key column to its dtype, in key order. Keys are always compared as
    typed values, never through a concatenated string.
    """

    kind: ClassVar[str] = "entity"

    join_keys: dict[str, DType]

    @field_validator("join_keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("an entity needs at least one join key")
        for key, dtype in value.items():
            check_identifier(key, "join key")
            if dtype.startswith("list<") or dtype in ("float32", "float64"):
                raise ValueError(f"join key {key!r} cannot be {dtype} (lists and floats do not compare exactly)")
        return value
