"""``feature_store.yaml``: the repo's configuration, validated by pydantic.

Each backend owns its config class; this module only gathers them into discriminated unions
tagged by ``type``. String values may reference environment variables as ``${NAME}`` or
``${NAME:-default}`` (for secrets); relative local paths are resolved against the repo.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from granero.access.config import AccessConfig
from granero.definitions.base import describe_validation_error
from granero.errors import ConfigError
from granero.offline.delta import DeltaConfig
from granero.offline.parquet import ParquetConfig
from granero.offline.retrieval import RetrievalConfig
from granero.offline.spark_session import SparkConfig
from granero.online.embedded import EmbeddedRedisConfig
from granero.online.redis import RedisConfig
from granero.registry.config import RegistryConfig
from granero.serving.config import ServingConfig
from granero.streaming.config import StreamingConfig

CONFIG_FILE = "feature_store.yaml"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

OfflineStoreConfig = Annotated[DeltaConfig | ParquetConfig, Field(discriminator="type")]
OnlineStoreConfig = Annotated[EmbeddedRedisConfig | RedisConfig, Field(discriminator="type")]


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str
    registry: RegistryConfig = RegistryConfig()
    offline_store: OfflineStoreConfig = DeltaConfig()
    online_store: OnlineStoreConfig = EmbeddedRedisConfig()
    spark: SparkConfig = SparkConfig()
    serving: ServingConfig = ServingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    access: AccessConfig = AccessConfig()
    streaming: StreamingConfig = StreamingConfig()

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]+$", value):
            raise ValueError("project must contain only letters, digits, '_' and '-'")
        return value


def substitute_env(value: Any, where: str = "") -> Any:
    """Replace ``${NAME}`` references in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: substitute_env(v, f"{where}.{k}".lstrip(".")) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda m: _env_value(m, where), value)
    return value


def _env_value(match: re.Match[str], where: str) -> str:
    name, default = match[1], match[2]
    if name in os.environ:
        return os.environ[name]
    if default is not None:
        return default
    raise ConfigError(f"{CONFIG_FILE}: {where} references ${{{name}}}, which is not set")


def resolve_path(repo_path: Path, path: str) -> str:
    """A URI stays as written; a relative local path is taken relative to the repo."""
    if _URI.match(path) or Path(path).is_absolute():
        return path
    return str((repo_path / path).resolve())


def load_config(repo_path: Path) -> RepoConfig:
    """Read, substitute, validate and path-resolve ``feature_store.yaml`` of a repo."""
    file = repo_path / CONFIG_FILE
    if not file.is_file():
        raise ConfigError(f"{file} not found: is {repo_path} a Granero repo? (granero init DIR makes one)")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: invalid YAML{_where(error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    try:
        config = RepoConfig.model_validate(substitute_env(raw))
    except ValidationError as error:
        raise ConfigError(f"{file}: {describe_validation_error(error, 'config', 'feature_store.yaml')}") from None
    return _with_resolved_paths(config, repo_path)


def _where(error: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's snippet of the line: it may hold a password."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{at}: {problem}" if problem else at


def _with_resolved_paths(config: RepoConfig, repo_path: Path) -> RepoConfig:
    updates: dict[str, Any] = {
        "registry": config.registry.model_copy(update={"path": resolve_path(repo_path, config.registry.path)}),
        "offline_store": config.offline_store.model_copy(
            update={"path": resolve_path(repo_path, config.offline_store.path)}
        ),
    }
    if isinstance(config.online_store, EmbeddedRedisConfig):
        data_dir = resolve_path(repo_path, config.online_store.data_dir)
        updates["online_store"] = config.online_store.model_copy(update={"data_dir": data_dir})
    updates["access"] = config.access.resolved(repo_path)
    updates["streaming"] = config.streaming.model_copy(update={
        field: resolve_path(repo_path, getattr(config.streaming, field))
        for field in ("checkpoint_location", "dead_letter_location")})
    if config.serving.tls is not None:
        tls = {field: resolve_path(repo_path, path)
               for field, path in config.serving.tls.model_dump().items() if path}
        updates["serving"] = config.serving.model_copy(
            update={"tls": config.serving.tls.model_copy(update=tls)})
    return config.model_copy(update=updates)
