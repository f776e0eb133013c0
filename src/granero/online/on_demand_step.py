"""The on-demand step of a lookup: one on-demand view's outputs from its inputs' reads.

``online.on_demand`` plans a request (what to read, which views to compute); this module takes
the reads of one request batch and computes each on-demand view's answer, shaped as a plain
view's read (``ViewColumns``), so the library and both wire layouts encode it as any view.

Inputs are a feature read (null where its row is missing, withheld or null: what the training
join gives) and the request's values (checked by ``on_demand.request_values``). They reach the
transform in its mode's form, by the same runner training calls:

    vectorized   one Arrow array per input (``arrays.typed_array``), ``runner.run_batch``
    row          the Python values a row sees (``on_demand.rows``), ``runner.row_outputs``:
                 no Arrow array is built, in or out, unless an output needs converting

Both forms give a transform the same values as training's Arrow batches do (property tests in
``tests/on_demand/test_rows.py`` hold the row form to the Arrow form).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from granero.on_demand.arrays import typed_array
from granero.on_demand.request_values import RequestColumns, request_arrays, request_lists
from granero.on_demand.rows import feature_values
from granero.on_demand.runner import Runnable, row_outputs, run_batch
from granero.online.lookup import ViewColumns

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions.on_demand import OnDemandFeatureView

_ZEROS = {"int32": 0, "int64": 0, "float32": 0.0, "float64": 0.0, "bool": False, "timestamp": 0}
"""What a ``ViewColumns`` column of a fixed-width dtype holds where it has no value."""
_NOT_FOUND = 1


@dataclass(frozen=True)
class OnDemandReader:
    """How to compute one on-demand view's requested outputs from its inputs' reads."""

    name: str
    view: OnDemandFeatureView
    inputs: tuple[tuple[str, str, int, int], ...]
    """Per feature input: (name, dtype, index of its input read, position in that read)."""
    input_reads: tuple[int, ...]
    """The input reads whose statuses are this view's (one per input view)."""
    request_fields: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]
    """The requested outputs (name, dtype), in request order."""
    transform: Runnable
    """The view's transform as the runner takes it (``runner.runnable``), resolved once."""

    def compute(self, reads: Sequence[ViewColumns], request: RequestColumns, count: int
                ) -> ViewColumns:
        """The outputs for every entity row, as a view's read (see ``online.on_demand``)."""
        if self.transform.mode == "row":
            produced = row_outputs(self.transform, self._lists(reads, request, count), count)
        else:
            produced = run_batch(self.transform, self._columns(reads, request, count), count)
        status, events = self._statuses(reads, count)
        withheld = [row for row, code in enumerate(status) if code]
        values, missing = [], []
        for name, dtype in self.outputs:
            output = produced[name]
            column, nulls = output if type(output) is tuple else _output_column(output, dtype)
            values.append(column)
            missing.append(sorted({*nulls, *withheld}) if withheld else nulls)
        return ViewColumns(status, events, values, missing)

    def _columns(self, reads: Sequence[ViewColumns], request: RequestColumns, count: int
                 ) -> dict[str, pa.Array]:
        """Every input of the transform as an Arrow array of ``count`` values, in its declared
        order (``run_batch``'s terms); request values checked."""
        built = {name: typed_array(reads[read].values[position], dtype, reads[read].missing[position])
                 for name, dtype, read, position in self.inputs}
        built.update(request_arrays(self.request_fields, request, count, self.name))
        return {name: built[name] for name in self.transform.inputs}

    def _lists(self, reads: Sequence[ViewColumns], request: RequestColumns, count: int
               ) -> dict[str, list[Any]]:
        """``_columns`` as Python values (``run_rows``' terms), the same checks, no array."""
        built = {name: feature_values(reads[read].values[position], dtype, reads[read].missing[position])
                 for name, dtype, read, position in self.inputs}
        built.update(request_lists(self.request_fields, request, count, self.name))
        return {name: built[name] for name in self.transform.inputs}

    def _statuses(self, reads: Sequence[ViewColumns], count: int) -> tuple[list[int], list[int]]:
        """Per entity row: NOT_FOUND if an input view's is, else OUTSIDE_MAX_AGE if one's is, else
        PRESENT; and the oldest input row's event time (0 when NOT_FOUND or no input view)."""
        if not self.input_reads:
            return [0] * count, [0] * count
        statuses = [reads[i].status for i in self.input_reads]
        events = [reads[i].event_micros for i in self.input_reads]
        if len(statuses) == 1:
            return list(statuses[0]), list(events[0])
        status = [_NOT_FOUND if _NOT_FOUND in row else max(row) for row in zip(*statuses, strict=True)]
        oldest = [0 if code == _NOT_FOUND else min(times)
                  for code, times in zip(status, zip(*events, strict=True), strict=True)]
        return status, oldest


def _output_column(array: pa.Array, dtype: str) -> tuple[list[Any], list[int]]:
    """An output array as a ``ViewColumns`` column and its null rows."""
    import numpy as np
    import pyarrow as pa

    if dtype == "timestamp":
        array = array.cast(pa.int64())
    nulls: list[int] = []
    if array.null_count:
        nulls = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist()
        if dtype in _ZEROS:
            array = array.fill_null(_ZEROS[dtype])
    return array.to_pylist(), nulls
