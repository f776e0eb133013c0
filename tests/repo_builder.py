"""Writes small feature repos for tests, one definition file at a time."""

from __future__ import annotations

import textwrap
from pathlib import Path

CONFIG = "project: test\nonline_store: {type: embedded}\n"

ENTITIES = '''
from granero import Entity
driver = Entity(join_keys={"driver_id": "int64"}, owner="supply", tags={"team": "supply"})
'''

VIEWS = '''
from entities import driver
from granero import FeatureView, Field, FileSource
driver_stats = FeatureView(
    entities=[driver],
    source=FileSource(path="data/driver_stats", timestamp_field="event_timestamp"),
    ttl="1d",
    features=[Field(name="conv_rate", dtype="float64", description="conversion"),
              Field(name="trips", dtype="int64", tags={"pii": "no"})],
    owner="supply",
    tags={"team": "supply"},
)
'''

SERVICES = '''
from views import driver_stats
from granero import FeatureService
ranking = FeatureService(features=[driver_stats[["conv_rate"]]])
'''


def write_repo(root: Path, **files: str) -> Path:
    """A repo with feature_store.yaml and ``name=source`` definition files (dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(files.pop("feature_store_yaml", CONFIG))
    for name, source in files.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def standard_repo(root: Path, **overrides: str) -> Path:
    """entities.py, views.py and services.py, any of them replaced by ``overrides``."""
    files = {"entities": ENTITIES, "views": VIEWS, "services": SERVICES, **overrides}
    return write_repo(root, **files)
