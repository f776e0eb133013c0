"""Training sets as pandas, the same whichever engine built them: the caller's frame as given,
then the feature columns with dtypes that depend on the column types alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def training_frame(entities: pd.DataFrame, features: pa.Table) -> pd.DataFrame:
    """The caller's entity rows exactly as given (columns, dtypes, values, index), followed by
    the feature columns as ``pandas_frame`` makes them: the same whichever engine built them."""
    import pandas as pd

    values = pandas_frame(features)
    joined = pd.concat([entities.reset_index(drop=True), values], axis=1)
    joined.index = entities.index
    return joined


def pandas_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow columns (features, or Spark's entity columns) as pandas, whichever engine built them.

    Timestamps are UTC; ints and bools take pandas' nullable dtypes (``Int64``, ``boolean``) so a
    null never turns them into floats; floats stay numpy floats (null is NaN); strings, bytes and
    lists are objects. The dtypes depend on the column types alone, never on the values.
    """
    import pandas as pd
    import pyarrow as pa

    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    columns = [
        c.cast(pa.timestamp(c.type.unit, tz="UTC")) if pa.types.is_timestamp(c.type) else c
        for c in table.columns
    ]
    return pa.table(columns, names=table.column_names).to_pandas(types_mapper=nullable.get)


def is_pandas(entities: Any) -> bool:
    import pandas as pd

    return isinstance(entities, pd.DataFrame)
