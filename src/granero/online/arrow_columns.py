"""Arrow columns and datetimes as the integers and bytes the online encodings are built from
(``online.encoding``, ``online.entity_keys``). Pure: no I/O. Times are exact microseconds since
the Unix epoch (UTC), never floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def expire_at_ms(event_micros: np.ndarray, ttl: timedelta) -> np.ndarray:
    """Unix ms at which a row stops being servable, rounded up so Redis keeps it through the
    inclusive end of its ttl (``now - event_timestamp == ttl`` is still served)."""
    end = event_micros + ttl // _MICRO
    return -(-end // 1000)


def micros_column(column: pa.Array) -> np.ndarray:
    """A timestamp column as int64 microseconds since the epoch (nulls are not allowed)."""
    if column.null_count:
        raise ValueError("timestamp column holds nulls")
    return as_micros(column).to_numpy()


def as_micros(column: pa.Array) -> pa.Array:
    """A timestamp or integer column as int64 microseconds, nulls kept."""
    import pyarrow as pa

    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz="UTC"), safe=False)
    return column.cast(pa.int64())


def fixed_numpy(dtype: str, column: pa.Array) -> np.ndarray:
    if dtype == "timestamp":
        column = as_micros(column)
    filler = False if dtype == "bool" else 0
    return column.fill_null(filler).to_numpy(zero_copy_only=False)


def null_bitmaps(columns: Sequence[pa.Array], size: int) -> np.ndarray:
    import numpy as np

    nulls = np.zeros((len(columns[0]) if columns else 0, size * 8), dtype=bool)
    for i, column in enumerate(columns):
        if column.null_count:
            nulls[:, i] = column.is_null().to_numpy(zero_copy_only=False)
    return np.packbits(nulls, axis=1, bitorder="little")


def binary(column: pa.Array) -> pa.Array:
    import pyarrow as pa

    if pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type):
        return column.cast(pa.large_binary())
    return column.cast(pa.binary())
