"""Discovering definitions in a feature repo's Python files.

Every ``*.py`` file of the repo (outside data, hidden and underscore folders) is imported under a
private module name, and every module-level object that is a definition is collected in one
generic loop. Import-time failures become DefinitionErrors naming the file and line.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from granero.definitions import Definition, RepoDefinitions, compile_definitions
from granero.errors import DefinitionError, GraneroError
from granero.on_demand.probe import probe_repo

SKIPPED_DIRS = {"data", "scripts", "tests", "__pycache__"}


def definition_files(repo_path: Path) -> list[Path]:
    """The repo's definition files, in a stable order."""
    files = []
    for path in sorted(repo_path.rglob("*.py")):
        parts = path.relative_to(repo_path).parts
        if any(p.startswith((".", "_")) or p in SKIPPED_DIRS for p in parts[:-1]):
            continue
        if not path.name.startswith("_"):
            files.append(path)
    return files


def load_repo(repo_path: Path) -> RepoDefinitions:
    """Import the repo's definition files and compile what they declare.

    Files are imported under their own module names (``drivers``, ``sub.views``), so that
    ``from entities import driver`` in one file yields the very objects another file declared.
    Those modules are dropped from ``sys.modules`` afterwards: loading another repo, or the same
    repo again, always imports fresh code.
    """
    files = definition_files(repo_path)
    names = [_module_name(file, repo_path) for file in files]
    found: list[tuple[str, Definition]] = []
    _forget(names)
    sys.path.insert(0, str(repo_path))
    try:
        for file, name in zip(files, names, strict=True):
            found.extend(_definitions_in(_import_file(file, name)))
    finally:
        sys.path.remove(str(repo_path))
        _forget(names)
    definitions = compile_definitions(found)
    probe_repo(definitions)  # on-demand transforms run once on a probe batch: fail here, not later
    return definitions


def _module_name(file: Path, repo_path: Path) -> str:
    return ".".join(file.relative_to(repo_path).with_suffix("").parts)


def _forget(names: list[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)


def _definitions_in(module: ModuleType) -> Iterator[tuple[str, Definition]]:
    for variable, value in vars(module).items():
        if isinstance(value, Definition):
            yield variable, value


def _import_file(file: Path, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except GraneroError:
        raise
    except SyntaxError as error:
        raise DefinitionError(f"{error.filename}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:  # any failure in user code is reported with its place
        raise DefinitionError(f"{_failing_line(error, file)}: {type(error).__name__}: {error}") from None


def _failing_line(error: BaseException, file: Path) -> str:
    """``file:line`` of the deepest traceback frame in the repo's files (``file`` by default)."""
    place, repo = str(file), file.parent.resolve()
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve().is_relative_to(repo):
            place = f"{frame.filename}:{frame.lineno}"
    return place
