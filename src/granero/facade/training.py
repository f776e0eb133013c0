"""The facade's training part: point-in-time training sets (Spark or in process), the engine
that would run, the manifest that pins table versions, and the latest offline rows per entity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from granero.access.facade import AccessCheck
    from granero.config import RepoConfig
    from granero.definitions import RepoDefinitions
    from granero.definitions.refs import ViewFeatures
    from granero.offline.on_demand_training import TrainingStep
    from granero.offline.retrieval import Engine, TrainingManifest
    from granero.offline.tables import OfflineStore
    from granero.registry import FileRegistry, Interval, RegistryVersion


class TrainingMethods:
    """``FeatureStore``'s training retrieval methods (granero.facade)."""

    config: RepoConfig
    registry: FileRegistry
    access: AccessCheck
    spark: SparkSession
    offline_store: OfflineStore

    registered: Callable[[], RepoDefinitions]  # granero.facade.registry_methods
    load_definitions: Callable[[], RepoDefinitions]

    def get_historical_features(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        full_feature_names: bool = True,
        table_versions: dict[str, int] | None = None,
        manifest_path: str | Path | None = None,
    ) -> DataFrame:
        """A training set: ``entity_df``'s rows, each with the feature values as of its timestamp.

        ``entity_df`` (Spark or pandas DataFrame, or a Parquet/CSV/Delta path) needs
        ``event_timestamp`` and the views' join keys; its rows come back unchanged (duplicates and
        extra columns such as labels kept, Spark types as given; row order not preserved),
        followed by one column per feature, ``view__feature`` or the bare name when not
        ``full_feature_names``. A pandas frame becomes Spark rows with its timestamps as
        ``TimestampType`` instants (naive ones are UTC); Spark shows them in the session time
        zone, UTC (``toPandas()`` gives naive UTC datetimes). No entity rows: no rows. Tables are
        read at ``table_versions`` (default: current). With ``manifest_path``, the
        ``TrainingManifest`` (refs, registry version and hash, table versions) is written there
        as JSON; ``training_manifest`` returns one without retrieving.
        """
        from granero.offline.retrieval import historical_features

        registry, requested, manifest, step = self._training_request(
            features, feature_service, full_feature_names, table_versions
        )
        frame = historical_features(
            self.spark, self.offline_store, registry, entity_df, requested, manifest
        )
        if manifest_path is not None:
            step.manifest(manifest).write(manifest_path)
        return step.finish_spark(frame, manifest)

    def get_historical_features_pandas(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        full_feature_names: bool = True,
        table_versions: dict[str, int] | None = None,
        manifest_path: str | Path | None = None,
        engine: Engine = "auto",
    ) -> pd.DataFrame:
        """``get_historical_features``, collected as a pandas DataFrame, rows in input order.

        ``engine="auto"`` answers in process (Arrow, no Spark) when ``entity_df`` is a pandas
        DataFrame with a datetime64 ``event_timestamp`` and join keys of their dtypes' families,
        the offline store is on a local file system, and the tables' rows of the entity rows' days
        number at most ``retrieval.local_max_rows``; otherwise Spark answers. ``"local"`` and
        ``"spark"`` force an engine. Both give the same frame: a pandas ``entity_df``'s own
        columns exactly as given (dtypes, values, index), then the features (ints and bools
        nullable, timestamps UTC); an empty ``entity_df`` gives an empty frame of those columns
        and dtypes. ``frame.attrs["granero_engine"]`` names the engine that ran.
        """
        from granero.offline.retrieval import pandas_training_set

        registry, requested, manifest, step = self._training_request(
            features, feature_service, full_feature_names, table_versions
        )
        frame = pandas_training_set(
            lambda: self.spark, self.offline_store, registry, entity_df, requested, manifest,
            self.config.retrieval, engine, step.extend_arrow if step.active else None,
        )
        if manifest_path is not None:
            step.manifest(manifest).write(manifest_path)
        return frame

    def training_engine(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        table_versions: dict[str, int] | None = None,
    ) -> str:
        """``"local"`` or ``"spark"``: the engine ``get_historical_features_pandas`` picks for
        this request with ``engine="auto"`` (nothing is retrieved)."""
        from granero.offline.retrieval import choose_engine

        _, requested, manifest, _ = self._training_request(features, feature_service, True, table_versions)
        store, config = self.offline_store, self.config.retrieval
        return choose_engine("auto", entity_df, store, requested, manifest, config).engine

    def _training_request(
        self,
        features: list[str] | None,
        feature_service: str | None,
        full_feature_names: bool,
        table_versions: dict[str, int] | None,
    ) -> tuple[RegistryVersion, list[ViewFeatures], TrainingManifest, TrainingStep]:
        """The registry version, the features to join by view, their pinned manifest, and the
        step that computes on-demand features after the join (inactive when none is asked)."""
        from granero.offline.retrieval import build_manifest

        self.access.require_read(self.registered(), "read_offline", features, feature_service)
        registry, requested, step = self._requested_features(features, feature_service, full_feature_names)
        manifest = build_manifest(
            registry, requested, self.offline_store, feature_service=feature_service,
            full_feature_names=step.lookup_full_names, table_versions=table_versions,
        )
        return registry, requested, manifest, step

    def training_manifest(
        self,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        full_feature_names: bool = True,
        table_versions: dict[str, int] | None = None,
    ) -> TrainingManifest:
        """What ``get_historical_features`` would read now, table versions pinned.

        Pass ``manifest.table_versions`` back to ``get_historical_features`` to rebuild the
        same training set later (Delta keeps the versions).
        """
        _, _, manifest, step = self._training_request(features, feature_service, full_feature_names, table_versions)
        return step.manifest(manifest)

    def _requested_features(
        self, features: list[str] | None, feature_service: str | None, full_feature_names: bool
    ) -> tuple[RegistryVersion, list[ViewFeatures], TrainingStep]:
        from granero.offline.on_demand_training import training_request

        self.registered()  # fails clearly before the first apply
        registry = self.registry.current()
        requested, step = training_request(
            registry.definitions, self.load_definitions, features, feature_service, full_feature_names
        )
        return registry, requested, step

    def latest_rows(self, view_name: str, interval: Interval | None = None) -> DataFrame:
        """Per entity key, the offline row with the greatest (event_timestamp, created_timestamp),
        among rows with event_timestamp in ``interval`` when given (else the whole table).

        Columns are the offline table's; this is what the online sync writes.
        """
        from granero.offline.delta import window_predicate
        from granero.offline.materialize import select_views
        from granero.offline.retrieval import latest_rows
        from granero.offline.tables import read_view_table

        defs = self.registered()
        view = select_views(defs, [view_name])[0]
        table = read_view_table(self.offline_store, defs, view)
        if interval is not None:
            table = table.where(window_predicate(interval))
        return latest_rows(table, list(defs.join_keys(view)))
