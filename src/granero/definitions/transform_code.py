"""Code identity of a Python transform: what the registry records so that serving and training
can prove they run the code that was applied.

What counts in ``source_hash`` (SHA-256, hex):

1. the transform's own source text (``inspect.getsource``, dedented; decorators included);
2. the repo code it reaches by name: every global the function (or a function nested in it)
   names that is a function or class defined in the *same module* is hashed by its source, and
   followed the same way; a global holding a plain constant (number, string, bytes, bool, None,
   or a tuple/frozenset of those) is hashed by its ``repr``.

What does not count: modules and objects imported from elsewhere (numpy, pyarrow, another repo
file's helpers are named but not followed), closure cells, default argument values. Library code
counts by version instead: ``libraries`` records the versions of pyarrow and numpy, which change
what a vectorized transform computes; a drift there is reported, not refused.

The registry keeps ``ref`` (``module:qualname``) for people to read, never to import: the code is
the repo's files, loaded as any definition is, and checked against the recorded hash.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterator
from importlib import metadata
from types import CodeType, FunctionType

from granero.definitions.base import Model

LIBRARIES = ("pyarrow", "numpy")
"""Libraries whose versions a transform's results depend on."""

_CONSTANTS = (int, float, str, bytes, bool, type(None))


class TransformCode(Model):
    """What identifies a transform's code: recorded on apply, checked before it runs."""

    ref: str
    """``module:qualname`` where it was defined (for people; never imported by name)."""
    source_hash: str
    libraries: dict[str, str] = {}


def transform_code(function: Callable) -> TransformCode:
    """The code identity of ``function``; ValueError when its source cannot be read."""
    if not isinstance(function, FunctionType):
        raise ValueError(f"transform must be a Python function, not {type(function).__name__}")
    digest = hashlib.sha256()
    for name, text in _relevant_code(function):
        digest.update(f"{name}\0{text}\0".encode())
    ref = f"{function.__module__}:{function.__qualname__}"
    return TransformCode(ref=ref, source_hash=digest.hexdigest(), libraries=library_versions())


def library_versions() -> dict[str, str]:
    """Installed versions of ``LIBRARIES`` (read from metadata: nothing is imported)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _relevant_code(function: FunctionType) -> Iterator[tuple[str, str]]:
    """``(name, text)`` of the function, then of each same-module global it reaches, in a
    stable order (first reached first)."""
    module, seen = function.__module__, {function.__qualname__}
    pending: list[tuple[str, object]] = [(function.__qualname__, function)]
    while pending:
        name, obj = pending.pop(0)
        yield name, _text(obj)
        if not isinstance(obj, FunctionType):
            continue
        for global_name in _global_names(obj.__code__):
            value = obj.__globals__.get(global_name)
            if global_name not in seen and _counts(value, module):
                seen.add(global_name)
                pending.append((global_name, value))


def _text(obj: object) -> str:
    if isinstance(obj, FunctionType | type):
        try:
            return textwrap.dedent(inspect.getsource(obj))
        except (OSError, TypeError):
            raise ValueError(
                f"the source of {getattr(obj, '__qualname__', obj)!r} cannot be read: define the "
                "transform and the helpers it calls in a file of the repo"
            ) from None
    return repr(obj)


def _counts(value: object, module: str) -> bool:
    if isinstance(value, FunctionType | type):
        return value.__module__ == module
    return _is_constant(value)


def _is_constant(value: object) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_is_constant(v) for v in value)
    return isinstance(value, _CONSTANTS)


def _global_names(code: CodeType) -> list[str]:
    """Names a code object (and the code nested in it: lambdas, comprehensions) looks up."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names += _global_names(constant)
    return names


def with_code(data: object, key: str) -> object:
    """Pydantic ``before`` data with ``code`` computed from the function under ``key``; the
    registry's form (``code`` without a function) passes as it is."""
    if not isinstance(data, dict) or data.get(key) is None:
        if isinstance(data, dict) and data.get("code") is None:
            raise ValueError(f"{key}: a Python function is needed")
        return data
    if data.get("code") is not None:
        raise ValueError(f"code: it is computed from the {key}; do not pass it")
    try:
        return {**data, "code": transform_code(data[key])}
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None
