"""The FeatureStore facade: one object that wires the configured backends together.

Backends are built once, lazily, from ``feature_store.yaml`` (or passed in), so that commands
that only touch the registry never start Spark or Redis. The registry and training parts live in
``granero.facade``; this module holds the backends, materialization, push and the online side.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from granero.config import RepoConfig, load_config
from granero.facade.registry_methods import FeatureInfo, Plan, RegistryMethods
from granero.facade.training import TrainingMethods
from granero.registry import FileRegistry
from granero.registry.sync_progress import SyncProgress

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from pyspark.sql import SparkSession

    from granero.access.facade import AccessCheck
    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.materialize import MaterializationResult
    from granero.offline.tables import OfflineStore
    from granero.online.cleanup import OnlineCleanup
    from granero.online.lookup import OnlineResult
    from granero.online.redis import RedisStore
    from granero.online.verify import VerifyReport, ViewVerification
    from granero.push import PushResult, PushTarget
    from granero.registry import Interval, RegistryVersion

__all__ = ["FeatureInfo", "FeatureStore", "Plan"]


class FeatureStore(RegistryMethods, TrainingMethods):
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

    # -- backends ------------------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        """The SparkSession, started on first use from the ``spark:`` config."""
        if self._spark is None:
            from granero.offline.spark_session import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    # -- offline: materialization -------------------------------------------------------------

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

    def apply(self, force: bool = False) -> tuple[Plan, RegistryVersion | None]:
        """Record the repo's definitions as a new registry version (``RegistryMethods.apply``),
        then drop the online data of the feature views it removed (``online.cleanup``): the
        plan's ``online`` says what went, and what stayed because Redis could not be reached."""
        from granero.online.cleanup import drop_views

        plan, version = super().apply(force)
        if version is None or not plan.removed_views:
            return plan, version
        return replace(plan, online=drop_views(self.online_store, plan.removed_views)), version

    def prune_online(self, dry_run: bool = False) -> OnlineCleanup:
        """Drop the online data of every view that has keys in Redis but is not registered (left
        by an ``apply`` that could not reach Redis, or by hand); judged as ``apply`` removing
        them; RegistryError before the first apply. ``dry_run``: only find them (``dropped`` counts
        0 keys each)."""
        from granero.online.cleanup import OnlineCleanup, drop_views, unregistered_views
        from granero.registry import Change

        registered = self.registered()  # nothing applied yet: refused, never every view dropped
        views = unregistered_views(self.online_store, [*registered.feature_views, *registered.on_demand_feature_views])
        removals = [Change("feature_view", view, "removed") for view in views]
        self.access.require_apply(self.registry.current(), registered, removals)
        return OnlineCleanup(dict.fromkeys(views, 0)) if dry_run else drop_views(self.online_store, views)

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
