"""Materialization's side of write-time transforms (``definitions.write_transform``).

``with_write_transform`` adds the transform's outputs to the source rows with ``mapInArrow``
before the rest of the pipeline (window, filter, SQL transformations, casts) runs, so they are
read like source columns of their names (a source column of the same name is replaced). Each
Arrow batch goes through ``on_demand.runner.run``: the outputs are checked and cast losslessly to
their declared dtypes, and a failure is a ``TransformError`` naming the view and the output
(Spark's wrapping is removed by ``spark_errors``).

The function comes from the repo's files, checked against the registered hash
(``attach_write_transform``): jobs read the registered definitions, and the registry keeps no code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, RepoDefinitions
from granero.errors import MaterializationError, TransformCodeChanged
from granero.on_demand.runner import Runnable, run

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame


def attach_write_transform(view: FeatureView, load_repo: Callable[[], RepoDefinitions]) -> FeatureView:
    """The registered view carrying its write transform's function from the repo's files, when
    it has one; ``TransformCodeChanged`` when the files hold other code than was applied."""
    registered = view.write_transform
    if registered is None or registered.function is not None:
        return view
    loaded = load_repo().feature_views.get(view.name)
    current = loaded.write_transform if loaded else None
    if current is None or registered.code is None or current.code is None:
        raise TransformCodeChanged(f"feature view {view.name!r}: its write transform is registered but not "
                                   "defined in the repo's files; serve the files that were applied")
    if current.code.source_hash != registered.code.source_hash:
        raise TransformCodeChanged(
            f"feature view {view.name!r}: the write transform loaded from the repo ({current.code.ref}, hash "
            f"{current.code.source_hash[:12]}) is not the code applied (hash {registered.code.source_hash[:12]}); "
            "run `granero apply`"
        )
    attached = registered.model_copy(update={"function": current.function})
    copy = view.model_copy(update={"write_transform": attached})
    copy._origin = view.origin
    return copy


def write_runnable(view: FeatureView) -> Runnable:
    transform = view.write_transform
    if transform is None:
        raise ValueError(f"feature view {view.name!r} has no write transform")
    outputs = tuple(f for f in view.features if f.name in transform.outputs)
    ref = transform.code.ref if transform.code else "?"
    label = f"feature view {view.name!r} write_transform"
    return Runnable(label, transform.function, transform.mode, ref, tuple(transform.inputs), outputs)


def with_write_transform(source: DataFrame, view: FeatureView) -> DataFrame:
    """``source`` plus the write transform's outputs (the view's own source when it has none)."""
    if view.write_transform is None:
        return source
    from pyspark.sql.types import StructField, StructType

    from granero.types import spark_type

    runnable = write_runnable(view)
    missing = [c for c in runnable.inputs if c not in source.columns]
    if missing:
        raise MaterializationError(
            f"feature view {view.name!r} write_transform.inputs: the source has no column {missing}; "
            f"it has {sorted(source.columns)}"
        )
    kept = [f for f in source.schema.fields if f.name not in view.write_transform.outputs]
    added = [StructField(f.name, spark_type(f.dtype)) for f in runnable.outputs]
    return source.mapInArrow(_batches(runnable, [f.name for f in kept]), StructType([*kept, *added]))


def _batches(runnable: Runnable, kept: list[str]) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            outputs = run(runnable, {c: batch.column(c) for c in runnable.inputs})
            columns = [batch.column(c) for c in kept] + list(outputs.values())
            yield pa.RecordBatch.from_arrays(columns, names=[*kept, *outputs])

    return compute
