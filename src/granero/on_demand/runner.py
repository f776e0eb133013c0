"""Running an on-demand view's transform over a batch: the one code path of serving and training.

``run_transform(view, inputs)`` takes one Arrow array per input (every input the view declares,
all of one length) and returns one Arrow array per output, of the declared dtype and the batch's
length, or raises ``TransformError`` naming the view, the output and the transform. Serving
calls it once per request batch, training once per Arrow batch (in process, or on each Spark
executor through ``mapInArrow``), with the same function object.

A batch of no rows never calls the transform: it gives empty columns of the declared dtypes, so
a transform need not handle the empty case (``np.max`` of nothing...).

Row mode has one path, on Python values (``run_rows``): an Arrow batch (training, the probe)
gets there through ``to_pylist``, a request directly (``on_demand.rows``). Its outputs are
gathered per output and taken as they are when plainly of their dtype (``arrays.plain_column``),
else converted and checked like a vectorized transform's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from granero.definitions.field import Field
from granero.definitions.on_demand import OnDemandFeatureView, RequestSource
from granero.errors import InvalidRequest, TransformError
from granero.on_demand.arrays import plain_column, typed_array
from granero.on_demand.conform import as_arrow, lossless_cast
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Runnable:
    """What the runner needs of a transform: an on-demand view's, or a feature view's write-time
    transform (``offline.write_transform``)."""

    label: str
    """What errors name first, e.g. ``on-demand feature view 'x'``."""
    function: Callable | None
    mode: str
    ref: str
    inputs: tuple[str, ...]
    outputs: tuple[Field, ...]

    @cached_property
    def targets(self) -> tuple[pa.DataType, ...]:
        """The outputs' Arrow types, computed once (the request path pays per call otherwise)."""
        return tuple(arrow_type(f.dtype) for f in self.outputs)


_RUNNABLES: dict[int, tuple[OnDemandFeatureView, Runnable]] = {}
"""Per view object (kept alive here, so its id is not reused), its Runnable: built once."""


def run_transform(view: OnDemandFeatureView, inputs: Mapping[str, Any]) -> dict[str, pa.Array]:
    """The view's outputs for one batch of ``inputs`` (input name -> Arrow array)."""
    return run(runnable(view), inputs)


def runnable(view: OnDemandFeatureView) -> Runnable:
    cached = _RUNNABLES.get(id(view))
    if cached is not None and cached[0] is view:
        return cached[1]
    made = Runnable(
        f"on-demand feature view {view.name!r}", view.transform, view.mode,
        view.code.ref if view.code else "?", tuple(_input_names(view)), tuple(view.features),
    )
    if len(_RUNNABLES) >= 4096:  # views loaded again and again (tests, reloads): start over
        _RUNNABLES.clear()
    _RUNNABLES[id(view)] = (view, made)
    return made


def run(transform: Runnable, inputs: Mapping[str, Any]) -> dict[str, pa.Array]:
    """``transform``'s outputs for one batch, checked (length, lossless dtype)."""
    columns, length = _batch(transform, inputs)
    return run_batch(transform, columns, length)


def run_batch(transform: Runnable, columns: dict[str, pa.Array], length: int) -> dict[str, pa.Array]:
    """``run`` of inputs the caller built itself: one ``pa.Array`` of ``length`` values per name
    of ``transform.inputs``, in that order (serving's plan guarantees it once, so a request does
    not check it again). The transform's call and the checks of its outputs are ``run``'s."""
    if transform.mode == "row":
        return run_rows(transform, {name: column.to_pylist() for name, column in columns.items()},
                        length)
    function = loaded_transform(transform)
    if length == 0:
        return {f.name: _empty(f.dtype) for f in transform.outputs}
    produced = _call(transform, function, columns)
    return {
        f.name: _output(transform, produced, f, target, length)
        for f, target in zip(transform.outputs, transform.targets, strict=True)
    }


def loaded_transform(transform: Runnable) -> Callable:
    """The function; the registry's copy of a definition carries none (load the repo's files)."""
    if transform.function is None:
        raise TransformError(
            f"{transform.label}: this definition has no code (the registry keeps only its hash); "
            "load the transform from the repo's files (on_demand.identity.loaded_views)"
        )
    return transform.function


def _batch(transform: Runnable, inputs: Mapping[str, Any]) -> tuple[dict[str, pa.Array], int]:
    missing = [n for n in transform.inputs if n not in inputs]
    if missing:
        raise InvalidRequest(f"{transform.label}: inputs {missing} are missing")
    columns = {n: as_arrow(inputs[n]) for n in transform.inputs}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise InvalidRequest(f"{transform.label}: inputs have different lengths "
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


def _call(transform: Runnable, function: Callable, columns: dict[str, pa.Array]) -> Mapping:
    try:
        produced = function(dict(columns))
    except Exception as error:  # user code: any failure is reported with the view's name
        raise _failed(transform, f"raised {type(error).__name__}: {error}") from error
    if type(produced) is not dict and not isinstance(produced, Mapping):
        raise _failed(transform, f"returned a {type(produced).__name__}, not a dict of output name -> column")
    return produced


def run_rows(transform: Runnable, columns: Mapping[str, list], length: int) -> dict[str, pa.Array]:
    """A row-mode transform on Python values (the request path's, which builds no input array):
    one list of ``length`` values per name of ``transform.inputs``, each value the one Arrow's
    ``to_pylist`` gives (``on_demand.rows``). Calls, errors and outputs are ``run_batch``'s."""
    return {
        f.name: typed_array(out[0], f.dtype, out[1], checked=True) if type(out) is tuple else out
        for f, out in zip(transform.outputs, row_outputs(transform, columns, length).values(), strict=True)
    }


def row_outputs(transform: Runnable, columns: Mapping[str, list], length: int
                ) -> dict[str, tuple[list, list[int]] | pa.Array]:
    """``run_rows``' outputs, each as ``arrays.plain_column`` gives it (values and null rows, no
    array built) when its values are plainly of its dtype, else as the checked array."""
    function = loaded_transform(transform)
    if length == 0:
        return {f.name: _empty(f.dtype) for f in transform.outputs}
    produced = _rows(transform, function, columns, length)
    outputs: dict[str, tuple[list, list[int]] | pa.Array] = {}
    for field, target in zip(transform.outputs, transform.targets, strict=True):
        plain = plain_column(produced[field.name], field.dtype)
        outputs[field.name] = plain if plain is not None else \
            _output(transform, produced, field, target, length)
    return outputs


def _rows(transform: Runnable, function: Callable, columns: Mapping[str, list], length: int
          ) -> dict[str, list]:
    """The transform once per row (a dict of the inputs' values), its dicts gathered into a list
    per output (an output a row leaves out is null there)."""
    names = list(columns)
    if names:
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    else:
        rows = [{} for _ in range(length)]
    results = []
    for index, row in enumerate(rows):
        try:
            result = function(row)
        except Exception as error:  # user code
            raise _failed(transform, f"raised {type(error).__name__} on row {index}: {error}") from error
        if type(result) is not dict and not isinstance(result, Mapping):
            raise _failed(transform, f"returned a {type(result).__name__} on row {index}, not a dict")
        results.append(result)
    return {f.name: [result.get(f.name) for result in results] for f in transform.outputs}


def _output(transform: Runnable, produced: Mapping, field: Field, target: pa.DataType, length: int) -> pa.Array:
    name, dtype = field.name, field.dtype
    if name not in produced:
        raise _failed(transform, f"returned no output {name!r} (it returned {sorted(produced)})")
    value = produced[name]
    if isinstance(value, _arrow_array()) and value.type == target and len(value) == length:
        return value  # the common case, an Arrow array as declared: nothing to check or convert
    try:
        column = as_arrow(produced[name])
        if len(column) != length:
            raise ValueError(f"{len(column)} values for a batch of {length} rows")
    except (TypeError, ValueError) as error:
        raise _failed(transform, f"output {name!r} (declared {dtype}): {error}") from None
    except Exception as error:  # pyarrow's own conversion errors (mixed types in a list...)
        raise _failed(transform, f"output {name!r} (declared {dtype}): {type(error).__name__}: {error}") from None
    try:
        return lossless_cast(column, target)
    except ValueError as error:
        raise _failed(transform, f"output {name!r} (declared {dtype}): {error}", output=name) from None


@cache
def _arrow_array() -> type:
    """``pa.Array`` (a ChunkedArray is not one), imported on first use."""
    import pyarrow as pa

    return pa.Array


def _failed(transform: Runnable, what: str, output: str | None = None) -> TransformError:
    """The error; ``output`` names the output whose dtype did not fit (else None)."""
    error = TransformError(f"{transform.label}: transform {transform.ref} {what}")
    error.output = output  # type: ignore[attr-defined]
    return error
