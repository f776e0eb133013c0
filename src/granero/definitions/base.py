"""The common base of every definition: frozen pydantic data with a remembered origin.

Definitions are pure data. Each one remembers where in the user's repo it was written (file and
line), so that every later error — from pydantic at construction or from cross-definition checks
at apply time — can name the file, the definition and the field.
"""

from __future__ import annotations

import linecache
import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from granero.errors import DefinitionError

_PACKAGE_DIR = str(Path(__file__).parents[1])
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_FIELD_FIRST = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.DOTALL)
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=[^=]")


def _caller_frame() -> FrameType | None:
    """The first stack frame outside the granero package and pydantic (cheap: no source reads)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and "pydantic" not in filename:
            return frame
        frame = frame.f_back
    return None


def _origin(frame: FrameType | None) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "<unknown>"


def _assigned_variable(frame: FrameType | None) -> str:
    """The variable a definition is being assigned to at ``frame``, read from its source line."""
    if frame is None:
        return ""
    match = _ASSIGNMENT.match(linecache.getline(frame.f_code.co_filename, frame.f_lineno))
    return match[1] if match else ""


def check_identifier(value: str, what: str = "name") -> str:
    if value and not NAME_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be an identifier (letters, digits, underscore)")
    return value


def describe_validation_error(error: ValidationError, kind: str, name: str) -> str:
    """One line per pydantic error: ``Kind 'name' field 'a.b': message``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if not field:  # a check across fields names its field first: "aggregations[1].window: ..."
            named = _FIELD_FIRST.match(message)
            field, message = (named[1], named[2]) if named else ("(definition)", message)
        lines.append(f"{kind} {name!r} field {field!r}: {message}")
    return "; ".join(lines)


class Model(BaseModel):
    """Frozen, strict-about-unknown-fields base for all definition data."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class Definition(Model):
    """A named, owned, tagged object declared in a feature repo."""

    kind: ClassVar[str] = "definition"

    name: str = ""
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = {}

    _origin: str = PrivateAttr(default="<unknown>")

    def __init__(self, **data: Any) -> None:
        frame = _caller_frame()
        try:
            super().__init__(**data)
        except ValidationError as error:
            name = data.get("name") or _assigned_variable(frame)
            detail = describe_validation_error(error, type(self).__name__, name)
            raise DefinitionError(f"{_origin(frame)}: {detail}") from None
        self._origin = _origin(frame)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        return check_identifier(value)

    def __eq__(self, other: object) -> bool:
        """Equal when the data is equal; where it was written does not count."""
        return type(self) is type(other) and self.model_dump() == other.model_dump()  # type: ignore[attr-defined]

    __hash__ = Model.__hash__

    @property
    def origin(self) -> str:
        """Where the definition was written, as ``file:line``."""
        return self._origin

    def named(self, name: str) -> Definition:
        """A copy carrying ``name`` (used by discovery to default a name to its variable)."""
        copy = self.model_copy(update={"name": name})
        copy._origin = self._origin
        return copy

    def fail(self, field: str, message: str) -> DefinitionError:
        """A DefinitionError naming this definition's origin, kind, name and the field."""
        return DefinitionError(
            f"{self.origin}: {type(self).__name__} {self.name!r} field {field!r}: {message}"
        )
