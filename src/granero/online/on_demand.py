"""On-demand features in online lookups: read the inputs with the plain views, run the transform.

A request naming on-demand features is planned once per shape (``plan_lookup``): the plain views
it asks for, plus one reader per view an on-demand view reads (its input features only), all
read in the lookup's single store round trip. Each on-demand view then runs its transform once
for the whole batch (``online.on_demand_step``: the runner training calls, in the transform's
mode, vectorized on Arrow arrays or row by row on Python values), on its
input features as read (null where a row is missing, withheld or null: what the training join
gives) and the request's values (checked by ``on_demand.request_values``). Its answer takes the
shape of a plain view's (``ViewColumns``), so the library and both wire layouts encode it as
they encode any view.

Statuses: an on-demand feature's view status is its inputs'. NOT_FOUND when an input view has
no row for the entity, else OUTSIDE_MAX_AGE when an input's row is older than its ttl: in both
cases the value is withheld (None), as for a plain feature. Else PRESENT, or NULL_VALUE where
the transform returned null. Its event time is its oldest input row's (0 for request values
only). A transform that raises or returns a wrong length or dtype fails the request
(``TransformError``, FAILED_PRECONDITION over gRPC), naming the view and output.

Code identity: the transforms come from the repo's files, loaded once per registry version
(``TransformCatalog``) and checked against the hash ``apply`` recorded; a view whose loaded code
differs is refused (``TransformCodeChanged``), whatever else the request asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from granero.definitions.refs import resolve_features
from granero.errors import GraneroError, InvalidRequest, TransformCodeChanged
from granero.on_demand.request import split_request
from granero.on_demand.request_values import MISSING, RequestColumns
from granero.on_demand.runner import runnable
from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import OnlineResult, ViewColumns, ViewReader, read_columns, rows_to_columns
from granero.online.on_demand_step import OnDemandReader

if TYPE_CHECKING:
    from datetime import datetime

    from granero.definitions.on_demand import OnDemandFeatureView
    from granero.definitions.repo_definitions import RepoDefinitions
    from granero.feature_store import FeatureStore
    from granero.online.store import OnlineStore

Transforms = Mapping[str, "OnDemandFeatureView | GraneroError"]
"""On-demand view name -> the registered view carrying its loaded transform, or why it cannot
run (its code differs from the applied code, or the repo's files do not load)."""

PLAN_CACHE_SIZE = 1024


# -- the transforms, per registry version -----------------------------------------------------------


class TransformCatalog:
    """The repo's on-demand transforms checked against the registered definitions, loaded once
    per registry version (importing the repo's files costs milliseconds to seconds: never per
    request). A version's definitions are one object for as long as it is current (the
    registry caches it), so that object is the key."""

    def __init__(self, load: Callable[[], RepoDefinitions]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._current: tuple[RepoDefinitions, Transforms, dict[tuple, LookupPlan]] | None = None

    def transforms(self, registered: RepoDefinitions) -> Transforms:
        return self._entry(registered)[1]

    def plan(self, registered: RepoDefinitions, features: Sequence[str] | None,
             feature_service: str | None) -> LookupPlan:
        """``plan_lookup`` of a selection, kept per registry version (as the server keeps its
        plans): a lookup then pays for reading and the transform only."""
        _, transforms, plans = self._entry(registered)
        key = (tuple(features) if features is not None else None, feature_service)
        plan = plans.get(key)
        if plan is None:
            plan = plan_lookup(registered, transforms, features, feature_service)
            if len(plans) < PLAN_CACHE_SIZE:
                plans[key] = plan
        return plan

    def _entry(self, registered: RepoDefinitions) -> tuple[Any, Transforms, dict[tuple, LookupPlan]]:
        current = self._current
        if current is not None and current[0] is registered:
            return current
        with self._lock:
            if self._current is None or self._current[0] is not registered:
                self._current = (registered, checked_transforms(registered, self._load), {})
            return self._current


def checked_transforms(registered: RepoDefinitions, load: Callable[[], RepoDefinitions]) -> Transforms:
    """Each registered on-demand view with its loaded transform, or the error that refuses it."""
    from granero.on_demand.identity import loaded_views

    names = list(registered.on_demand_feature_views)
    if not names:
        return {}
    try:
        loaded = load()
    except GraneroError as error:
        refusal = TransformCodeChanged(f"the repo's files do not load, so no on-demand transform "
                                       f"can run: {error}")
        return dict.fromkeys(names, refusal)
    found: dict[str, Any] = {}
    for name in names:
        try:
            found.update(loaded_views(registered, loaded, [name]))
        except GraneroError as error:
            found[name] = error
    return found


def refused_views(transforms: Transforms) -> dict[str, GraneroError]:
    return {name: view for name, view in transforms.items() if isinstance(view, GraneroError)}


# -- planning -------------------------------------------------------------------------------------


class PlainOutput(NamedTuple):
    """A plain view of the answer: its read, narrowed to the features asked for (its reader may
    also read input features of on-demand views, never returned)."""

    name: str
    read_index: int
    positions: tuple[int, ...] | None
    """Positions of the asked features in the read (None: all of them, in order)."""

    def answer(self, reads: Sequence[ViewColumns]) -> ViewColumns:
        read = reads[self.read_index]
        if self.positions is None:
            return read
        return read._replace(values=[read.values[k] for k in self.positions],
                             missing=[read.missing[k] for k in self.positions])


@dataclass(frozen=True)
class LookupPlan:
    """A request naming on-demand features: what to read, and how to answer per output view."""

    outputs: list[PlainOutput | OnDemandReader]
    """Per view of the answer, in request order."""
    output_dtypes: list[list[str]]
    feature_names: list[str]
    readers: list[ViewReader]
    """Every plain view read in the round trip: with the features asked for, then the on-demand
    views' inputs not asked for."""
    request_fields: dict[str, str]
    """Every request field the request must carry, with its dtype."""

    def answer(self, reads: Sequence[ViewColumns], request: RequestColumns, count: int
               ) -> list[ViewColumns]:
        """Per output view, its read: a plain view's as read, an on-demand view's computed."""
        return [output.answer(reads) if type(output) is PlainOutput else
                output.compute(reads, request, count)  # type: ignore[union-attr]
                for output in self.outputs]

    def served_values(self, answers: Sequence[ViewColumns]) -> list[list[Any]]:
        """Per feature of the answer: its values as the library serves them."""
        return [column for answer, dtypes in zip(answers, self.output_dtypes, strict=True)
                for column in _served(answer, dtypes)]


def selects_on_demand(defs: RepoDefinitions, features: Sequence[str] | None,
                      feature_service: str | None) -> bool:
    """Whether a selection names an on-demand view (then ``plan_lookup`` plans it)."""
    on_demand = defs.on_demand_feature_views
    if not on_demand:
        return False
    if feature_service is not None:
        service = defs.feature_services.get(feature_service)
        return service is not None and any(s.view_name in on_demand for s in service.features)
    return any(ref.partition(":")[0] in on_demand for ref in features or ())


def plan_lookup(defs: RepoDefinitions, transforms: Transforms, features: Sequence[str] | None,
                feature_service: str | None, full_names: bool = True) -> LookupPlan:
    """Resolve a selection with on-demand features (``on_demand.request.split_request``, as
    training does); raises what ``resolve_features`` raises, and the refusal of an on-demand
    view whose code cannot run."""
    split = split_request(defs, list(features) if features is not None else None, feature_service)
    reads = resolve_features(defs, features=split.lookups) if split.lookups else []
    readers = [ViewReader.of(v) for v in reads]
    where = {(v.view.name, f): (i, k) for i, v in enumerate(reads) for k, f in enumerate(v.features)}
    asked: dict[str, list[str]] = {}
    for view, feature in split.output:
        asked.setdefault(view, []).append(feature)
    on_demand = {od.view.name: od for od in split.on_demand}
    outputs: list[Any] = []
    dtypes: list[list[str]] = []
    for view, wanted in asked.items():
        if view in on_demand:
            outputs.append(_on_demand_reader(defs, transforms, view, wanted, where))
            dtypes.append([dtype for _, dtype in outputs[-1].outputs])
            continue
        index = where[(view, wanted[0])][0]
        positions = tuple(where[(view, f)][1] for f in wanted)
        whole = positions == tuple(range(len(reads[index].features)))
        outputs.append(PlainOutput(view, index, None if whole else positions))
        dtypes.append([reads[index].view.output_field(f).dtype for f in wanted])
    names = [f"{view}__{f}" if full_names else f for view, wanted in asked.items() for f in wanted]
    _check_unique(names)
    return LookupPlan(outputs, dtypes, names, readers, _request_fields(outputs))


def _on_demand_reader(defs: RepoDefinitions, transforms: Transforms, name: str, wanted: list[str],
                      where: dict[tuple[str, str], tuple[int, int]]) -> OnDemandReader:
    view = transforms.get(name)
    if view is None:
        raise TransformCodeChanged(f"on-demand feature view {name!r} has no loaded transform")
    if isinstance(view, GraneroError):
        raise view
    inputs = []
    for given in view.feature_inputs:
        served = {f.name: f.dtype for f in defs.feature_views[given.view_name].output_fields}
        inputs += [(f, served[f], *where[(given.view_name, f)]) for f in given.features or []]
    reads = tuple(dict.fromkeys(read for _, _, read, _ in inputs))
    fields = tuple((f.name, f.dtype) for f in view.request_fields)
    dtypes = {f.name: f.dtype for f in view.features}
    return OnDemandReader(name, view, tuple(inputs), reads, fields,
                          tuple((f, dtypes[f]) for f in wanted), runnable(view))


def _request_fields(outputs: list[Any]) -> dict[str, str]:
    """Every request field, once; two views declaring one name with two dtypes cannot share a
    request."""
    fields: dict[str, str] = {}
    for output in outputs:
        for name, dtype in getattr(output, "request_fields", ()):
            if fields.setdefault(name, dtype) != dtype:
                raise InvalidRequest(f"request value {name!r} is {fields[name]} for one requested "
                                     f"on-demand view and {dtype} for another; request them apart")
    return fields


def _check_unique(names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidRequest(f"feature names {duplicates} collide without view prefixes; "
                             "request full feature names")


def _served(read: ViewColumns, dtypes: Sequence[str]) -> list[list[Any]]:
    """``read``'s columns as the library serves them: None where a value is missing, and
    timestamps as datetimes (fills in ``read``'s own lists, which the answer made)."""
    columns = list(read.values)
    for k, dtype in enumerate(dtypes):
        if dtype == "timestamp":
            columns[k] = [from_micros(micros) for micros in columns[k]]
    for k, missing in enumerate(read.missing):
        if missing:
            columns[k] = list(columns[k])
            for row in missing:
                columns[k][row] = None
    return columns


# -- the library's lookup ---------------------------------------------------------------------------


RequestData = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
"""Request values column-wise (field -> one value per entity row) or a dict per entity row."""


def lookup_on_demand(store: OnlineStore, plan: LookupPlan, entity_rows: Sequence[Mapping[str, Any]],
                     request_data: RequestData | None, now_micros: int) -> OnlineResult:
    """``lookup`` of a request with on-demand features: one round trip, one transform call per
    on-demand view, the same statuses as the gRPC server's."""
    count = len(entity_rows)
    request = request_columns(request_data, count)
    keys = rows_to_columns(plan.readers, entity_rows)
    reads = read_columns(store, plan.readers, keys, now_micros) if plan.readers and count else \
        [_empty_read(reader, count) for reader in plan.readers]
    answers = plan.answer(reads, request, count)
    values = plan.served_values(answers)
    statuses = [a.status for a, ds in zip(answers, plan.output_dtypes, strict=True) for _ in ds]
    events = [a.event_micros for a, ds in zip(answers, plan.output_dtypes, strict=True) for _ in ds]
    return OnlineResult(plan.feature_names, values, statuses, events)


def request_columns(request_data: RequestData | None, count: int) -> dict[str, list[Any]]:
    """``request_data`` column-wise (``MISSING`` where a row dict lacks a field)."""
    if request_data is None:
        return {}
    if isinstance(request_data, Mapping):
        return {name: list(values) for name, values in request_data.items()}
    rows = list(request_data)
    if len(rows) != count:
        raise InvalidRequest(f"request_data has {len(rows)} rows for {count} entity rows; give "
                             "one per entity row")
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name, MISSING) for row in rows] for name in names}


def _empty_read(reader: ViewReader, count: int) -> ViewColumns:
    """A read of no entity rows (nothing is sent to the store)."""
    return ViewColumns([], [], [[] for _ in reader.wanted], [[] for _ in reader.wanted])


def online_result(store: FeatureStore, registered: RepoDefinitions,
                  entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str] | None,
                  feature_service: str | None, request_data: RequestData | None, now: datetime
                  ) -> OnlineResult:
    """``FeatureStore.get_online_features`` of a selection with on-demand features: the repo's
    transforms loaded once per registry version (``FeatureStore.transforms``), checked, run."""
    plan = store.transforms.plan(registered, features, feature_service)
    return lookup_on_demand(store.online_store, plan, entity_rows, request_data, to_micros(now))
