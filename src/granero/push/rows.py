"""What a caller pushes, as one Arrow table: rows (mappings), columns, pandas or Arrow.

Only the container is translated here; the values keep the types they came with (a JSON number
is an int64 or a double, a JSON time a string) and ``push.validation`` judges them against the
view. A column whose values have no common type is refused naming the column, never coerced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest

if TYPE_CHECKING:
    import pyarrow as pa

Pushable = Any
"""A ``pyarrow.Table``, a ``pandas.DataFrame``, a sequence of row mappings, or a mapping of
column name -> sequence of values."""


def as_table(rows: Pushable, view: str) -> pa.Table:
    """``rows`` as an Arrow table (a row missing a column gives a null there)."""
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if _is_pandas(rows):
        return _from_columns({str(name): rows[name] for name in rows.columns}, view)
    if isinstance(rows, Mapping):
        return _from_columns(_same_length(rows, view), view)
    if isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
        return _from_columns(_columns_of(rows, view), view)
    raise InvalidRequest(
        f"push to feature view {view!r}: rows must be a pyarrow Table, a pandas DataFrame, a list "
        f"of row dicts or a dict of columns, not {type(rows).__name__}")


def _is_pandas(rows: Any) -> bool:
    return type(rows).__module__.startswith("pandas") and hasattr(rows, "columns")


def _columns_of(rows: Sequence[Any], view: str) -> dict[str, list[Any]]:
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidRequest(f"push to feature view {view!r}: row {index} is a "
                                 f"{type(row).__name__}, not a mapping of column -> value")
    names = list(dict.fromkeys(str(name) for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _same_length(columns: Mapping[str, Any], view: str) -> Mapping[str, Any]:
    lengths = {str(name): len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(f"push to feature view {view!r}: columns have different lengths "
                             f"{lengths}")
    return columns


def _from_columns(columns: Mapping[str, Any], view: str) -> pa.Table:
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        try:
            arrays[str(name)] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
            raise InvalidRequest(f"push to feature view {view!r}, column {name!r}: its values "
                                 f"have no common type{_odd_row(list(values))} ({error})") from None
    return pa.table(arrays) if arrays else pa.table({})


def _odd_row(values: list[Any]) -> str:
    """``: row N is a <type>`` for the first value whose type differs from the first one's
    (ints and floats count as one type), or nothing."""
    def kind(value: Any) -> str:
        return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__

    present = [(index, kind(value)) for index, value in enumerate(values) if value is not None]
    odd = next((index for index, name in present if name != present[0][1]), None)
    return "" if odd is None else f": row {odd} is a {type(values[odd]).__name__}"
