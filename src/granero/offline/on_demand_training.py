"""On-demand features in training sets: computed per entity row after the point-in-time join.

The join looks up the request's plain features and the on-demand views' input features (see
``on_demand.request``) under internal ``view__feature`` names; ``TrainingStep`` then runs each
transform on those columns and on the request fields, which are columns of the entity rows, and
leaves the columns asked for, named as asked, in request order. It runs

- in process, on the Arrow table either engine builds for a pandas result (``extend_arrow``);
- on Spark, through ``mapInArrow`` on each Arrow batch of the training DataFrame
  (``finish_spark``): the executors call the very function object, shipped by value.

Both call ``on_demand.run_transform`` on Arrow columns, so they agree value for value. A request
field must be a column of the entity rows (RetrievalError naming it otherwise); its values are
converted to the field's dtype by the lossless rule (``on_demand.conform``): in a pandas frame,
NaN in a float column is null, as pandas itself means it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from granero.definitions.on_demand import OnDemandFeatureView, RequestSource
from granero.errors import RetrievalError
from granero.on_demand.conform import lossless_cast
from granero.on_demand.request import SplitRequest
from granero.on_demand.runner import run_transform
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from granero.definitions.refs import ViewFeatures
    from granero.definitions.repo_definitions import RepoDefinitions
    from granero.offline.retrieval import TrainingManifest


@dataclass(frozen=True)
class TrainingStep:
    """What turns the joined lookups into the requested training columns."""

    split: SplitRequest
    views: dict[str, OnDemandFeatureView]
    """The requested on-demand views, carrying the functions loaded from the repo (checked)."""
    full_feature_names: bool

    @property
    def active(self) -> bool:
        return bool(self.split.on_demand)

    @property
    def lookup_full_names(self) -> bool:
        """Lookups are joined under ``view__feature`` while on-demand outputs are to be computed."""
        return True if self.active else self.full_feature_names

    def manifest(self, joined: TrainingManifest) -> TrainingManifest:
        """The manifest of what is returned: the columns asked for and each transform's hash."""
        if not self.active:
            return joined
        return replace(
            joined,
            features=[f"{view}:{feature}" for view, feature in self.split.output],
            columns=self.final_columns(),
            full_feature_names=self.full_feature_names,
            on_demand={name: view.code.source_hash for name, view in self.views.items() if view.code},
        )

    def final_columns(self) -> list[str]:
        from granero.offline.retrieval import distinct_columns

        return distinct_columns(self.split.output_columns(self.full_feature_names))

    def request_fields(self) -> dict[str, tuple[str, str]]:
        """Request field -> (dtype, the view that needs it)."""
        return {f.name: (f.dtype, od.view.name) for od in self.split.on_demand for f in od.view.request_fields}

    def check_entity_columns(self, columns: list[str]) -> None:
        """Every request field is a column of the entity rows; no output takes an entity column's name."""
        for name, (_, view) in self.request_fields().items():
            if name not in columns:
                raise RetrievalError(
                    f"on-demand feature view {view!r} needs request field {name!r} as a column of the "
                    f"entity rows; they have {columns}"
                )
        taken = sorted(set(self.final_columns()) & set(columns))
        if self.active and taken:
            raise RetrievalError(f"the entity rows already have columns named {taken}, like requested features")

    # -- computing -------------------------------------------------------------------------------

    def outputs(self, table: pa.Table | pa.RecordBatch, request: dict[str, pa.Array]) -> dict[str, pa.Array]:
        """``view__feature`` -> values of each requested on-demand output, for ``table``'s rows
        (which hold the lookups under ``view__feature``)."""
        computed: dict[str, pa.Array] = {}
        for od in self.split.on_demand:
            view = self.views[od.view.name]
            outputs = run_transform(view, _inputs(view, table, request))
            computed |= {f"{view.name}__{name}": outputs[name] for name in od.features}
        return computed

    def extend_arrow(self, joined: pa.Table, entities: Any) -> pa.Table:
        """In process: the joined table (feature columns; for entity rows that are not a pandas
        frame, the whole rows) with the requested columns only, named and ordered as asked."""
        import pyarrow as pa

        if not self.active:
            return joined
        internal = set(self.split.output_columns(True)) | {r.replace(":", "__", 1) for r in self.split.hidden}
        kept = [c for c in joined.column_names if c not in internal]  # entity columns, if any
        pandas = _is_pandas(entities)
        self.check_entity_columns([str(c) for c in entities.columns] if pandas else kept)
        computed = self.outputs(joined, self._request_columns(entities if pandas else joined))
        columns = [joined[c] for c in kept] + [_column(joined, computed, c) for c in self.split.output_columns(True)]
        return pa.table(columns, names=kept + self.final_columns())

    def extend_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """On an executor: one Arrow batch of the training DataFrame plus the computed outputs."""
        import pyarrow as pa

        computed = self.outputs(batch, self._request_columns(batch))
        names = [*batch.schema.names, *computed]
        return pa.RecordBatch.from_arrays([*batch.columns, *computed.values()], names=names)

    def _request_columns(self, rows: Any) -> dict[str, pa.Array]:
        """Each request field from the entity rows (pandas, Arrow table or batch), typed."""
        return {name: _typed_request(rows, name, dtype, view) for name, (dtype, view) in self.request_fields().items()}

    def finish_spark(self, frame: DataFrame, joined: TrainingManifest) -> DataFrame:
        """The Spark training DataFrame with the on-demand outputs computed by ``mapInArrow``: the
        entity columns as given, then the requested columns, named and ordered as asked."""
        if not self.active:
            return frame
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructField, StructType

        from granero.types import spark_type

        entity_columns = [c for c in frame.columns if c not in joined.columns]
        self.check_entity_columns(entity_columns)
        added = [StructField(f"{od.view.name}__{name}", spark_type(od.view.output_fields[_index(od.view, name)].dtype))
                 for od in self.split.on_demand for name in od.features]
        computed = frame.mapInArrow(_batches(self), StructType([*frame.schema.fields, *added]))
        wanted = zip(self.split.output_columns(True), self.final_columns(), strict=True)
        return computed.select(*[F.col(f"`{c}`") for c in entity_columns],
                               *[F.col(f"`{c}`").alias(name) for c, name in wanted])


def _batches(step: TrainingStep):  # noqa: ANN202 -- a closure Spark pickles
    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield step.extend_batch(batch)

    return compute


def _index(view: OnDemandFeatureView, name: str) -> int:
    return view.feature_names.index(name)


def _inputs(view: OnDemandFeatureView, table: pa.Table | pa.RecordBatch, request: dict[str, pa.Array]) -> dict:
    """The transform's inputs: request fields, and input features from their lookup columns."""
    inputs = {}
    for given in view.inputs:
        if isinstance(given, RequestSource):
            inputs |= {f.name: request[f.name] for f in given.fields}
            continue
        for feature in given.features or []:
            column = table.column(f"{given.view_name}__{feature}")
            inputs[feature] = _as_array(column)
    return inputs


def _column(joined: pa.Table, computed: dict[str, pa.Array], name: str) -> Any:
    return computed[name] if name in computed else joined[name]


def _typed_request(rows: Any, name: str, dtype: str, view: str) -> pa.Array:
    import pyarrow as pa

    values = pa.Array.from_pandas(rows[name]) if _is_pandas(rows) else _as_array(rows.column(name))
    try:
        return lossless_cast(values, arrow_type(dtype))
    except ValueError as error:
        raise RetrievalError(
            f"entity rows column {name!r} (request field of on-demand feature view {view!r}, declared "
            f"{dtype}): {error}"
        ) from None


def _as_array(column: Any) -> pa.Array:
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _is_pandas(rows: Any) -> bool:
    return hasattr(rows, "iloc")


def training_request(
    defs: RepoDefinitions,
    load_repo: Callable[[], RepoDefinitions],
    features: list[str] | None,
    feature_service: str | None,
    full_feature_names: bool,
) -> tuple[list[ViewFeatures], TrainingStep]:
    """The lookups to join, by view, and the step that finishes the training set. The repo's
    files are loaded (``load_repo``) only when on-demand features are asked for: their functions
    come from there, checked against the registered code (``TransformCodeChanged`` otherwise)."""
    from granero.definitions.refs import resolve_features
    from granero.on_demand.identity import loaded_views
    from granero.on_demand.request import split_request

    split = split_request(defs, features, feature_service)
    if not split.on_demand:
        return resolve_features(defs, features, feature_service), TrainingStep(split, {}, full_feature_names)
    views = loaded_views(defs, load_repo(), [od.view.name for od in split.on_demand])
    return resolve_features(defs, features=split.lookups), TrainingStep(split, views, full_feature_names)
