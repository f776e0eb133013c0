"""Running an on-demand view's transform over a batch: the one code path of serving and training.

``run_transform(view, inputs)`` takes one Arrow array per input (every input the view declares,
all of one length) and returns one Arrow array per output, of the declared dtype and the batch's
length, or raises ``TransformError`` naming the view, the output and the transform. Serving
calls it once per request batch, training once per Arrow batch (in process, or on each Spark
executor through ``mapInArrow``), with the same function object.

A batch of no rows never calls the transform: it gives empty columns of the declared dtypes, so
a transform need not handle the empty case (``np.max`` of nothing...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from granero.definitions.on_demand import OnDemandFeatureView, RequestSource
from granero.errors import InvalidRequest, TransformError
from granero.on_demand.conform import as_arrow, lossless_cast
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa


def run_transform(view: OnDemandFeatureView, inputs: Mapping[str, Any]) -> dict[str, pa.Array]:
    """The view's outputs for one batch of ``inputs`` (input name -> Arrow array)."""
    transform = loaded_transform(view)
    columns, length = _batch(view, inputs)
    if length == 0:
        return {f.name: _empty(f.dtype) for f in view.features}
    produced = _call_rows(view, transform, columns) if view.mode == "row" else _call(view, transform, columns)
    return {f.name: _output(view, produced, f.name, f.dtype, length) for f in view.features}


def loaded_transform(view: OnDemandFeatureView) -> Callable:
    """The view's function; the registry's copy carries none (load the repo's files for it)."""
    if view.transform is None:
        raise TransformError(
            f"on-demand feature view {view.name!r}: this definition has no code (the registry keeps "
            "only its hash); load the transform from the repo's files (on_demand.identity.loaded_views)"
        )
    return view.transform


def _batch(view: OnDemandFeatureView, inputs: Mapping[str, Any]) -> tuple[dict[str, pa.Array], int]:
    names = _input_names(view)
    missing = [n for n in names if n not in inputs]
    if missing:
        raise InvalidRequest(f"on-demand feature view {view.name!r}: inputs {missing} are missing")
    columns = {n: as_arrow(inputs[n]) for n in names}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise InvalidRequest(f"on-demand feature view {view.name!r}: inputs have different lengths "
                             f"{ {n: len(c) for n, c in columns.items()} }")
    return columns, lengths.pop() if lengths else 0


def _input_names(view: OnDemandFeatureView) -> list[str]:
    """Input names in declaration order (compilation lists every input view's features)."""
    names: list[str] = []
    for given in view.inputs:
        names += [f.name for f in given.fields] if isinstance(given, RequestSource) else given.features or []
    return names


def _empty(dtype: str) -> pa.Array:
    import pyarrow as pa

    return pa.array([], type=arrow_type(dtype))


def _call(view: OnDemandFeatureView, transform: Callable, columns: dict[str, pa.Array]) -> Mapping:
    try:
        produced = transform(dict(columns))
    except Exception as error:  # user code: any failure is reported with the view's name
        raise _failed(view, f"raised {type(error).__name__}: {error}") from error
    if not isinstance(produced, Mapping):
        raise _failed(view, f"returned a {type(produced).__name__}, not a dict of output name -> column")
    return produced


def _call_rows(view: OnDemandFeatureView, transform: Callable, columns: dict[str, pa.Array]) -> Mapping:
    """Row mode: the transform once per row, its dicts gathered into columns (slower)."""
    import pyarrow as pa

    rows = pa.table(columns).to_pylist() if columns else []
    gathered: dict[str, list] = {f.name: [] for f in view.features}
    for index, row in enumerate(rows):
        try:
            result = transform(row)
        except Exception as error:  # user code
            raise _failed(view, f"raised {type(error).__name__} on row {index}: {error}") from error
        if not isinstance(result, Mapping):
            raise _failed(view, f"returned a {type(result).__name__} on row {index}, not a dict")
        for name, values in gathered.items():
            values.append(result.get(name))
    return gathered


def _output(view: OnDemandFeatureView, produced: Mapping, name: str, dtype: str, length: int) -> pa.Array:
    if name not in produced:
        raise _failed(view, f"returned no output {name!r} (it returned {sorted(produced)})")
    try:
        column = as_arrow(produced[name])
        if len(column) != length:
            raise ValueError(f"{len(column)} values for a batch of {length} rows")
    except (TypeError, ValueError) as error:
        raise _failed(view, f"output {name!r} (declared {dtype}): {error}") from None
    except Exception as error:  # pyarrow's own conversion errors (mixed types in a list...)
        raise _failed(view, f"output {name!r} (declared {dtype}): {type(error).__name__}: {error}") from None
    try:
        return lossless_cast(column, arrow_type(dtype))
    except ValueError as error:
        raise _failed(view, f"output {name!r} (declared {dtype}): {error}", output=name) from None


def _failed(view: OnDemandFeatureView, what: str, output: str | None = None) -> TransformError:
    """The error; ``output`` names the output whose dtype did not fit (else None)."""
    ref = view.code.ref if view.code else "?"
    error = TransformError(f"on-demand feature view {view.name!r}: transform {ref} {what}")
    error.output = output  # type: ignore[attr-defined]
    return error
