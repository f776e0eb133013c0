"""``granero init``: a new repo that applies, materializes and serves out of the box."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from granero.errors import ConfigError

_TEMPLATES = Path(__file__).parent / "scaffold"


def init_repo(directory: Path, project: str | None = None) -> list[Path]:
    """Write the template files and a small sample source; refuses to overwrite a repo."""
    if (directory / "feature_store.yaml").exists():
        raise ConfigError(f"{directory} already holds a feature_store.yaml; refusing to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    name = project or directory.resolve().name.replace(" ", "_")
    config = (_TEMPLATES / "feature_store.yaml").read_text().replace("{project}", name)
    written = [_write(directory / "feature_store.yaml", config),
               _write(directory / "example.py", (_TEMPLATES / "example.py").read_text())]
    written.append(write_sample_source(directory / "data" / "sources" / "user_activity"))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_sample_source(directory: Path, users: int = 20, days: int = 7) -> Path:
    """Daily activity rows for a few users, ending at the current hour (deterministic values)."""
    import pandas as pd

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    stamps = pd.date_range(end=end, periods=days, freq="1D")
    rows = [
        {"user_id": 1 + u, "event_timestamp": ts, "sessions_7d": (u * 7 + d) % 15,
         "minutes_7d": float((u * 13 + d * 5) % 120)}
        for u in range(users) for d, ts in enumerate(stamps)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "part-00000.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return path
