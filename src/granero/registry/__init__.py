"""The versioned registry of applied definitions and materialized intervals."""

from granero.registry.config import RegistryConfig
from granero.registry.diff import Change, FieldChange, breaking_changes, diff_definitions
from granero.registry.intervals import Interval, add_interval
from granero.registry.store import FileRegistry, RegistryVersion, atomic_write, content_hash

__all__ = [
    "Change",
    "FieldChange",
    "FileRegistry",
    "Interval",
    "RegistryConfig",
    "RegistryVersion",
    "add_interval",
    "atomic_write",
    "breaking_changes",
    "content_hash",
    "diff_definitions",
]
