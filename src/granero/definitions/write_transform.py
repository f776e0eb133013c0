"""Write-time transforms: a Python function a feature view applies at materialization.

For transforms too heavy for the request path: ``FeatureView(write_transform=WriteTransform(
function=f, inputs=["lat", "lon"], outputs=["zone"]), features=[..., Field("zone", ...)])``. The
function takes the named source columns (after ``field_mapping``) of each Arrow batch, in the
on-demand form (``mode="vectorized"``: a dict of Arrow arrays in, a dict of arrays out; or
``"row"``), and returns the named features, which are then stored, synced and served like any
other (cast to their declared dtypes by the lossless rule). Spark runs it with ``mapInArrow``.

As for on-demand views, the registry records the function's ``code`` (source hash), never the
function: materialization takes the function from the repo's files and refuses one whose hash
differs from the applied one (``TransformCodeChanged``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator, model_validator

from granero.definitions.base import Model, check_identifier
from granero.definitions.transform_code import TransformCode, with_code


class WriteTransform(Model):
    """A Python transform of a feature view's source rows, run at materialization."""

    function: Callable[..., Any] | None = PydanticField(default=None, exclude=True)
    """Not stored in the registry (``code`` is): present when loaded from the repo's files."""
    inputs: list[str]
    """Source columns (after ``field_mapping``) the function reads, by name."""
    outputs: list[str]
    """Features of the view the function computes (declared in ``features`` with their dtypes)."""
    mode: Literal["vectorized", "row"] = "vectorized"
    code: TransformCode | None = None

    @model_validator(mode="before")
    @classmethod
    def _identify(cls, data: Any) -> Any:
        return with_code(data, "function")

    @field_validator("inputs", "outputs")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one column is needed")
        return [check_identifier(name, "column") for name in value]


def check_write_transform(transform: WriteTransform | None, features: list[str], computed: list[str]) -> None:
    """Outputs are declared features that no SQL transformation computes too (ValueError)."""
    if transform is None:
        return
    undeclared = [o for o in transform.outputs if o not in features]
    if undeclared:
        raise ValueError(f"write_transform.outputs: {undeclared} are not declared in features")
    twice = [o for o in transform.outputs if o in computed]
    if twice:
        raise ValueError(f"write_transform.outputs: {twice} also have SQL transformations; keep one")
