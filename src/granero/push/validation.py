"""Pushed rows checked against the registered view, before anything is written.

The result is offline-table form (``offline.schema.table_dtypes``: join keys, ``event_timestamp``,
``created_timestamp``, features, each typed as the table stores it), which both the landing
folder and the online writer take as is. Refused with InvalidRequest naming the view, the column
and, for a value, its row: an unknown or missing column (keys, ``event_timestamp`` and every
feature are required; ``created_timestamp`` is optional), a type the cast rule refuses or a value
it would change (``push.conversion``), a null join key or event timestamp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.errors import InvalidRequest, NotFound
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP, table_dtypes
from granero.push.conversion import converted
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions import FeatureView, RepoDefinitions

OPTIONAL = (CREATED_TIMESTAMP,)


def pushed_view(defs: RepoDefinitions, name: str) -> FeatureView:
    """The registered feature view called ``name``: NotFound for an unknown name, InvalidRequest
    for an on-demand view (computed per request, it stores nothing to push into)."""
    view = defs.feature_views.get(name)
    if view is not None:
        return view
    if name in defs.on_demand_feature_views:
        raise InvalidRequest(f"cannot push to on-demand feature view {name!r}: it is computed per "
                             "request; push to the views it reads")
    raise NotFound(f"no feature view named {name!r}; known: {sorted(defs.feature_views)}")


def validated(defs: RepoDefinitions, view: FeatureView, rows: pa.Table) -> pa.Table:
    """``rows`` in the view's offline-table form, or InvalidRequest (nothing is written)."""
    import pyarrow as pa

    dtypes = dict(table_dtypes(defs, view))
    _check_names(view, list(rows.column_names), dtypes)
    columns = {name: _column(rows, view, name, dtype) for name, dtype in dtypes.items()}
    required = [*defs.join_keys(view), EVENT_TIMESTAMP]
    for name in required:
        _check_no_nulls(view, name, columns[name])
    return pa.table(columns, schema=pa.schema([(n, arrow_type(d)) for n, d in dtypes.items()]))


def _check_names(view: FeatureView, given: list[str], dtypes: dict[str, str]) -> None:
    duplicated = sorted({name for name in given if given.count(name) > 1})
    unknown = [name for name in given if name not in dtypes]
    missing = [name for name in dtypes if name not in given and name not in OPTIONAL]
    where = f"push to feature view {view.name!r}"
    if duplicated:
        raise InvalidRequest(f"{where}: column(s) {duplicated} given more than once")
    if unknown:
        raise InvalidRequest(f"{where}: unknown column(s) {unknown}; the view's columns are "
                             f"{list(dtypes)}")
    if missing:
        raise InvalidRequest(f"{where}: missing column(s) {missing} (join keys, "
                             f"{EVENT_TIMESTAMP!r} and every feature are required)")


def _column(rows: pa.Table, view: FeatureView, name: str, dtype: str) -> pa.Array:
    import pyarrow as pa

    if name not in rows.column_names:
        return pa.nulls(rows.num_rows, arrow_type(dtype))
    label = f"push to feature view {view.name!r}, column {name!r}"
    return converted(rows[name].combine_chunks(), dtype, label)


def _check_no_nulls(view: FeatureView, name: str, column: pa.Array) -> None:
    import pyarrow.compute as pc

    if column.null_count:
        row = pc.index(column.is_null(), True).as_py()
        raise InvalidRequest(f"push to feature view {view.name!r}, column {name!r}: row {row} is "
                             "null (join keys and event_timestamp must be set on every row)")
