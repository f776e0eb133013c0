"""The probe run: every loaded on-demand transform is called once, when the repo is loaded, on a
small batch built from its input dtypes (a value, another value, a null), so that a transform
that raises, returns the wrong length or a dtype its output cannot take fails ``plan``/``apply``
with the file and the field, not the first request or training job.

Probe values avoid zeros (a division by an input is fine) and include a null in every column
(inputs are null when a feature is missing or too old).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from granero.definitions.on_demand import OnDemandFeatureView, input_dtypes
from granero.errors import TransformError
from granero.types import arrow_type, list_element

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions.repo_definitions import RepoDefinitions

PROBE_VALUES: dict[str, tuple] = {
    "int32": (1, 2),
    "int64": (3, 4),
    "float32": (1.5, -0.25),
    "float64": (2.5, -0.75),
    "bool": (True, False),
    "string": ("a", "probe"),
    "bytes": (b"a", b"probe"),
    "timestamp": (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)),
}


def probe_batch(dtypes: dict[str, str]) -> dict[str, pa.Array]:
    """Three rows per input: two values of its dtype, then a null."""
    import pyarrow as pa

    return {name: pa.array(_probe_values(dtype), type=arrow_type(dtype)) for name, dtype in dtypes.items()}


def _probe_values(dtype: str) -> list:
    element = list_element(dtype)
    if element:
        first, second = PROBE_VALUES[element]
        return [[first], [first, second], None]
    return [*PROBE_VALUES[dtype], None]


def probe_view(repo: RepoDefinitions, view: OnDemandFeatureView) -> None:
    """Run the view's transform on its probe batch; a failure is the view's DefinitionError."""
    from granero.on_demand.runner import run_transform

    if view.transform is None:
        return
    try:
        run_transform(view, probe_batch(input_dtypes(repo, view)))
    except TransformError as error:
        field = "features" if getattr(error, "output", None) else "transform"
        raise view.fail(field, f"on a probe batch of its input dtypes (with nulls): {error}") from None


def probe_repo(repo: RepoDefinitions) -> None:
    """Probe every on-demand view of a freshly loaded repo."""
    for view in repo.on_demand_feature_views.values():
        probe_view(repo, view)
