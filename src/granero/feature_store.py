"""The FeatureStore facade: one object that wires the configured backends together.

Backends are built once, lazily, from ``feature_store.yaml`` (or passed in), so that commands
that only touch the registry never start Spark or Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from granero.config import RepoConfig, load_config
from granero.definitions import Definition, Entity, FeatureService, FeatureView, RepoDefinitions
from granero.errors import BreakingChangeError, NotFound, RegistryError
from granero.registry import (
    Change,
    FileRegistry,
    RegistryVersion,
    breaking_changes,
    content_hash,
    diff_definitions,
)
from granero.registry.sync_progress import SyncProgress
from granero.repo.loader import load_repo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from granero.access.facade import AccessCheck
    from granero.definitions.aggregation import Aggregation
    from granero.definitions.refs import ViewFeatures
    from granero.offline.materialize import MaterializationResult
    from granero.offline.on_demand_training import TrainingStep
    from granero.offline.retrieval import Engine, TrainingManifest
    from granero.offline.tables import OfflineStore
    from granero.online.lookup import OnlineResult
    from granero.online.on_demand import TransformCatalog
    from granero.online.redis import RedisStore
    from granero.online.verify import VerifyReport, ViewVerification
    from granero.push import PushResult, PushTarget
    from granero.registry import Interval


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do: the changes, and the reasons it would refuse without force."""

    changes: list[Change]
    breaking: list[str]
    current_version: int | None
    definitions: RepoDefinitions


@dataclass(frozen=True)
class FeatureInfo:
    """One feature, for discovery (``granero list features``)."""

    view: str
    name: str
    dtype: str
    description: str
    owner: str
    tags: dict[str, str]
    aggregation: Aggregation | None = None
    """What an aggregate view's feature computes (None for a plain view's)."""


class FeatureStore:
    """Entry point of the Python API: ``FeatureStore("feature_repo").apply()``."""

    def __init__(self, repo_path: str | Path = ".", *, config: RepoConfig | None = None) -> None:
        self.repo_path = Path(repo_path).resolve()
        self.config = config or load_config(self.repo_path)
        self.registry = FileRegistry(self.config.registry.path)
        self.sync_progress = SyncProgress(self.registry)  # windows not yet synced online
        self._spark: SparkSession | None = None
        self._online: Any = None

    @cached_property
    def access(self) -> AccessCheck:
        """Advisory checks of registry, offline and in-process reads (granero.access.facade)."""
        from granero.access.facade import AccessCheck

        return AccessCheck(self.config.access)

    # -- registry ------------------------------------------------------------------------------

    def load_definitions(self) -> RepoDefinitions:
        """Import and validate the repo's definition files (nothing is written)."""
        return load_repo(self.repo_path)

    def plan(self) -> Plan:
        """Diff the repo's definitions against the registry, without writing anything."""
        new = self.load_definitions()
        current = self.registry.current()
        old = current.definitions if current else RepoDefinitions()
        return Plan(diff_definitions(old, new), breaking_changes(old, new), current and current.version, new)

    def apply(self, force: bool = False) -> tuple[Plan, RegistryVersion | None]:
        """Record the repo's definitions as a new registry version; None when nothing changed.

        Refuses changes that would break stored data (BreakingChangeError) unless ``force``.
        """
        with self.registry.locked():
            plan = self.plan()
            self.access.require_apply(self.registry.current(), plan.definitions, plan.changes)
            if plan.breaking and not force:
                reasons = "\n  ".join(plan.breaking)
                raise BreakingChangeError(f"apply refused, it would break stored data:\n  {reasons}\n"
                                          "re-run with --force once the affected tables are rebuilt")
            current = self.registry.current()
            if current and current.hash == content_hash(plan.definitions):
                return plan, None
            return plan, self.registry.write_version(self.config.project, plan.definitions)

    def registered(self) -> RepoDefinitions:
        """The definitions of the current registry version."""
        current = self.registry.current()
        if current is None:
            raise RegistryError(f"nothing applied yet in {self.registry.path}: run `granero apply` first")
        return current.definitions

    @cached_property
    def transforms(self) -> TransformCatalog:
        """The repo's on-demand transforms, loaded from its files once per registry version and
        checked against the code ``apply`` recorded."""
        from granero.online.on_demand import TransformCatalog

        return TransformCatalog(self.load_definitions)

    def list_entities(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[Entity]:
        return _matching(self.registered().entities.values(), tags, owner)

    def list_feature_views(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureView]:
        return _matching(self.registered().feature_views.values(), tags, owner)

    def list_feature_services(
        self, tags: dict[str, str] | None = None, owner: str | None = None
    ) -> list[FeatureService]:
        return _matching(self.registered().feature_services.values(), tags, owner)

    def list_features(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureInfo]:
        """Every feature of every view, on-demand views' outputs included; tags match the
        feature's or its view's tags."""
        found, defs = [], self.registered()
        for view in [*defs.feature_views.values(), *defs.on_demand_feature_views.values()]:
            if owner and view.owner != owner:
                continue
            aggregations = {a.name: a for a in view.aggregations} if isinstance(view, FeatureView) else {}
            for feature in view.output_fields:
                if _has_tags({**view.tags, **feature.tags}, tags):
                    found.append(FeatureInfo(view.name, feature.name, feature.dtype, feature.description,
                                             view.owner, {**view.tags, **feature.tags},
                                             aggregations.get(feature.name)))
        return found

    def describe(self, name: str) -> Definition:
        """The registered entity, feature view, on-demand feature view or feature service called
        ``name``."""
        defs = self.registered()
        for section in (defs.entities, defs.feature_views, defs.on_demand_feature_views, defs.feature_services):
            if name in section:
                return section[name]
        raise NotFound(f"no entity, feature view, on-demand feature view or feature service named {name!r}")

    # -- backends ------------------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        """The SparkSession, started on first use from the ``spark:`` config."""
        if self._spark is None:
            from granero.offline.spark_session import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    # -- offline: materialization and training retrieval -----------------------------------------

    @cached_property
    def offline_store(self) -> OfflineStore:
        """The configured offline table backend, built once; Spark starts when it first needs it
        (reading local tables in process does not)."""
        from granero.offline.tables import build_offline_store

        return build_offline_store(self.config.offline_store, lambda: self.spark)

    def materialize(
        self, start: datetime, end: datetime, views: list[str] | None = None, *,
        sync_online: bool = True, now: datetime | None = None,
    ) -> list[MaterializationResult]:
        """Rebuild [start, end) of each view's offline table from its source (idempotent).

        ``end`` is capped at ``now`` (default: the current time), so no row stamped in the
        future reaches the tables or Redis. A view's interval is recorded in the registry only
        once its table write committed; online views are then synced when ``sync_online``,
        together with any window an earlier sync failed to bring online.
        """
        from granero.offline.materialize import capped_window, select_views

        defs = self.registered()
        interval, asked_end = capped_window(start, end, now)
        self.access.require_views(defs, "materialize", [v.name for v in select_views(defs, views)])
        return [self._materialize_view(defs, view, interval, sync_online, asked_end)
                for view in select_views(defs, views)]

    def materialize_incremental(
        self, end: datetime, views: list[str] | None = None, *,
        sync_online: bool = True, now: datetime | None = None,
    ) -> list[MaterializationResult]:
        """Materialize each view from the end of its last recorded interval (or 1970) up to
        ``end``, capped at ``now``, and re-materialize the windows where rows arrived late
        (``granero.incremental``: a Delta source's commits, ``allowed_lateness``, landed rows).

        Each result says why its window was written. A view with nothing to write is absent
        from the result, unless windows an earlier failed sync left pending were synced now (its
        result then has start == end). A view's source mark is recorded only after all its
        windows committed, so a failed run is planned again in full by the next one.
        """
        from granero.incremental import IncrementalPlanner
        from granero.offline import materialize as mat
        from granero.registry.source_progress import SourceProgress

        defs, done, results = self.registered(), self.registry.materialized(), []
        finish, asked_end = mat.capped_end(end, now)
        self.access.require_views(defs, "materialize", [v.name for v in mat.select_views(defs, views)])
        planner = IncrementalPlanner(lambda: self.spark, self.repo_path, self.config.offline_store.path)
        marks = SourceProgress(self.registry)
        for view in mat.select_views(defs, views):
            mark = marks.mark(view.name)
            plan = planner.plan(view, done.get(view.name, []), finish, mark)
            for rerun in plan.reruns:
                asked = asked_end if rerun.window.end == finish else None
                result = self._materialize_view(defs, view, rerun.window, sync_online, asked)
                results.append(replace(result, reason=rerun.reason))
            if not plan.reruns and sync_online and view.online and self.sync_progress.pending(view.name):
                start = mat.incremental_start(done.get(view.name, []))
                results.append(self._catch_up(defs, view, mat.MaterializationResult(view.name, start, start, 0, None)))
            if plan.mark != mark:
                marks.record(view.name, plan.mark)
        return results

    def _materialize_view(
        self, defs: RepoDefinitions, view: FeatureView, interval: Interval, sync_online: bool,
        asked_end: datetime | None,
    ) -> MaterializationResult:
        from granero.offline.materialize import materialize_view
        from granero.offline.write_transform import attach_write_transform

        code = attach_write_transform(view, self.load_definitions)  # the function, checked; no-op without one
        result = materialize_view(self.spark, self.offline_store, defs, code, interval, self.repo_path)
        if view.online:  # pending before recorded: a crash between the two loses no window
            self.sync_progress.add(view.name, interval)
        self.registry.record_materialized(view.name, interval)
        result = replace(result, asked_end=asked_end)
        return self._catch_up(defs, view, result) if sync_online and view.online else result

    def _catch_up(
        self, defs: RepoDefinitions, view: FeatureView, result: MaterializationResult
    ) -> MaterializationResult:
        """Sync the view's pending windows (any just written among them); they are marked
        synced only once all of them are."""
        pending = self.sync_progress.pending(view.name)
        rows = sum(self._sync_views(defs, [view], window)[view.name] for window in pending)
        self.sync_progress.synced(view.name, pending)
        return replace(result, online_rows=rows, synced=tuple(pending))

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

    # -- push ------------------------------------------------------------------------------------

    def push(self, view: str, rows: Any, *, to: str = "online_and_offline",
             batch_id: str | None = None) -> PushResult:
        """Write ``rows`` (a pyarrow Table, pandas DataFrame, list of row dicts or dict of
        columns: join keys, event_timestamp, optional created_timestamp, every feature) to
        ``view``: validated whole first (InvalidRequest naming column and row; nothing written),
        landed offline (the next materialization of their window merges them; ``to="online"``
        skips this), then written online write-if-newer (``to="offline"`` skips this). The same
        ``batch_id`` (default: a hash of the rows) lands once (granero.push)."""
        from granero.push import push_rows
        from granero.push.validation import pushed_view

        defs = self.registered()
        feature_view = pushed_view(defs, view)
        self.access.require_views(defs, "push", [view])
        target = self.push_target(online=to != "offline" and feature_view.online)
        return push_rows(defs, feature_view, rows, target, to=to, batch_id=batch_id,
                         max_rows=self.config.serving.limits.max_push_rows)

    def push_target(self, *, online: bool = True) -> PushTarget:
        """Where pushes write: the landing folder beside the offline tables, the online store
        (built only when ``online``), the offline store for aggregate views' events."""
        from granero.offline.landing import landing_location
        from granero.push import PushTarget

        return PushTarget(landing_location(self.config.offline_store.path),
                          self.online_store if online else None, self.offline_store,
                          self.config.retrieval.local_max_rows)

    # -- online: sync, lookups and verification ---------------------------------------------------

    @property
    def online_store(self) -> RedisStore:
        """The online store, built once (an embedded Redis server is started or reused)."""
        if self._online is None:
            from granero.online.store import build_online_store

            self._online = build_online_store(self.config.online_store, self.config.project)
        return self._online

    def sync_online(self, views: list[str] | None = None) -> dict[str, int]:
        """Write each online view's latest offline rows to the online store, from the Spark
        executors (write-if-newer: re-running changes nothing), which also catches up windows
        a failed sync left pending. Rows stored per view; ``online=False`` views are skipped."""
        defs, counts = self.registered(), {}
        self.access.require_views(defs, "materialize", [v.name for v in self._online_views(defs, views)])
        for view in self._online_views(defs, views):
            pending = self.sync_progress.pending(view.name)  # read before the table: all synced
            counts |= self._sync_views(defs, [view], None)
            self.sync_progress.synced(view.name, pending)
        return counts

    def _sync_views(
        self, defs: RepoDefinitions, views: list[FeatureView], interval: Interval | None
    ) -> dict[str, int]:
        """Sync each view's latest rows, of ``interval`` only when given: write-if-newer makes
        a window's latest rows enough after materializing that window, so an incremental run
        reads its window, not the table's whole history."""
        return {view.name: self._sync_view(defs, view, interval) for view in views}

    def _sync_view(self, defs: RepoDefinitions, view: FeatureView, interval: Interval | None) -> int:
        """In process when the table is local and small (``retrieval.local_max_rows``): no JVM
        for ``granero sync``; else from the Spark executors. Both write the same rows alike."""
        from granero.offline.as_of_now import latest_rows_arrow
        from granero.online.sync import sync_view, write_table

        if view.is_aggregate:
            return self._sync_aggregate_view(defs, view, interval)
        limit, keys = self.config.retrieval.local_max_rows, defs.join_keys(view)
        latest = latest_rows_arrow(self.offline_store, defs, view, interval, limit)
        if latest is not None:
            return write_table(self.online_store, view, keys, latest)
        settings, project = self.online_store.settings, self.config.project
        return sync_view(self.latest_rows(view.name, interval), settings, project, view, keys)

    def _sync_aggregate_view(self, defs: RepoDefinitions, view: FeatureView, interval: Interval | None) -> int:
        """Recompute every entity with an event in ``interval`` (all when None) from its offline
        events (granero.online.aggregate_sync); in process for small local tables. Entities stored."""
        from granero.aggregation.spec import aggregation_spec
        from granero.offline.tables import read_view_table
        from granero.online import aggregate_sync

        store, limit = self.online_store, self.config.retrieval.local_max_rows
        stored = aggregate_sync.sync_local(store, self.offline_store, defs, view, interval, limit)
        if stored is not None:
            return stored
        table = read_view_table(self.offline_store, defs, view)
        return aggregate_sync.sync_aggregate_view(
            table, store.settings, store.project, view.name, aggregation_spec(defs, view), interval
        )

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        now: datetime | None = None,
        request_data: Any = None,
    ) -> OnlineResult:
        """The latest values of the features for each entity row (one Redis round trip); a value
        older than its view's ttl at ``now`` (default: the current time) is withheld.
        On-demand features take their request values from ``request_data``: field -> one value
        per entity row, or a dict per entity row (``granero.online.on_demand``)."""
        from datetime import UTC, datetime

        from granero.definitions.refs import resolve_features
        from granero.online import on_demand
        from granero.online.lookup import lookup

        moment = now or datetime.now(UTC)
        defs = self.registered()
        self.access.require_read(defs, "read_online", features, feature_service)
        if on_demand.selects_on_demand(defs, features, feature_service):
            return on_demand.online_result(self, defs, entity_rows, features, feature_service,
                                           request_data, moment)
        views = resolve_features(defs, features=features, feature_service=feature_service)
        return lookup(self.online_store, views, entity_rows, moment)

    def verify(self, sample: int = 100_000, now: datetime | None = None) -> VerifyReport:
        """Compare online lookups with the offline point-in-time values at ``now``: every entity
        of a view that has at most ``sample``, else a random ``sample`` of them. A small local
        table is read in process (no Spark)."""
        from datetime import UTC, datetime

        from granero.online.verify import VerifyReport

        defs, moment = self.registered(), now or datetime.now(UTC)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # naive is UTC
        return VerifyReport(moment, [self._verify_view(defs, view, sample, moment)
                                     for view in self._online_views(defs, None)])

    def stop_online(self) -> bool:
        """Stop this repo's embedded Redis server (SHUTDOWN SAVE); False when none was running
        or the online store is an external Redis."""
        from granero.online.embedded import EmbeddedRedis, EmbeddedRedisConfig

        if not isinstance(self.config.online_store, EmbeddedRedisConfig):
            self.close()
            return False
        stopped = EmbeddedRedis(self.config.online_store.data_dir).stop()
        self.close()  # after the stop, so this store's lease cannot have stopped it first
        return stopped

    def _online_views(self, defs: RepoDefinitions, names: list[str] | None) -> list[FeatureView]:
        from granero.offline.materialize import select_views

        return [view for view in select_views(defs, names) if view.online]

    def _verify_view(
        self, defs: RepoDefinitions, view: FeatureView, sample: int, now: datetime
    ) -> ViewVerification:
        from granero.offline import as_of_now
        from granero.online import verify

        store, limit = self.offline_store, self.config.retrieval.local_max_rows
        entities = as_of_now.view_entities(store, defs, view, limit)
        if entities is None:  # remote or large: Spark lists the entities and answers
            checked = verify.spark_checked(self.spark, self.latest_rows(view.name), view,
                                           defs.join_keys(view), sample, now, self.get_historical_features)
        else:
            picked = verify.pick(entities, sample)
            joined = as_of_now.values_as_of(store, defs, view, picked, now)
            checked = verify.arrow_checked(view, picked, joined, entities.num_rows)
        online = self.get_online_features(checked.entities, [f"{view.name}:*"], now=now)
        return verify.compare_view(view, checked, online)

    def close(self) -> None:
        """Release the online store's connections, and stop the embedded Redis server if this
        store was the last one using it and it is not kept (``keep_running``, ``granero online
        start``); its data is saved first. Interpreter exit does the same for an unclosed store."""
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_tags(actual: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return all(actual.get(k) == v for k, v in (wanted or {}).items())


def _matching(objects: Any, tags: dict[str, str] | None, owner: str | None) -> list:
    return [o for o in objects if _has_tags(o.tags, tags) and (not owner or o.owner == owner)]
