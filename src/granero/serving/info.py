"""Metadata the server answers (services, views, itself), as wire messages and Python values.

The server builds messages from registered definitions; the client turns them back into the
small frozen dataclasses below, so callers never handle protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from granero.definitions import FeatureService, FeatureView, RepoDefinitions
from granero.online.encoding import from_micros, to_micros
from granero.registry import RegistryVersion
from granero.serving.v1 import serving_pb2 as pb


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureViewInfo:
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    entities: list[str]
    join_keys: dict[str, str]
    """Join key -> dtype, in key order."""
    features: list[Column]
    ttl: timedelta
    online: bool
    on_demand: bool = False
    request_fields: dict[str, str] = field(default_factory=dict)
    """An on-demand view's request values: field -> dtype."""


@dataclass(frozen=True)
class FeatureServiceInfo:
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    features: list[str]
    """``view:feature`` references, in service order."""


@dataclass(frozen=True)
class ServerInfo:
    project: str
    registry_version: int
    registry_hash: str
    registry_applied_at: datetime
    granero_version: str


# -- server side: definitions -> messages ---------------------------------------------------------


def view_message(defs: RepoDefinitions, view: FeatureView) -> pb.FeatureViewInfo:
    return pb.FeatureViewInfo(
        name=view.name, description=view.description, owner=view.owner, tags=view.tags,
        entities=view.entity_names,
        join_keys=[pb.Column(name=k, dtype=d) for k, d in defs.join_keys(view).items()],
        features=[pb.Column(name=f.name, dtype=f.dtype, description=f.description, tags=f.tags)
                  for f in view.output_fields],
        ttl_seconds=int(view.ttl.total_seconds()), online=view.online,
    )


def service_message(defs: RepoDefinitions, service: FeatureService) -> pb.FeatureServiceInfo:
    refs = []
    for selection in service.features:
        view = (defs.feature_views.get(selection.view_name)
                or defs.on_demand_feature_views[selection.view_name])
        refs += [f"{view.name}:{f}" for f in selection.features or view.output_names]
    return pb.FeatureServiceInfo(name=service.name, description=service.description,
                                 owner=service.owner, tags=service.tags, features=refs)


def server_info_message(version: RegistryVersion, granero_version: str) -> pb.GetServerInfoResponse:
    return pb.GetServerInfoResponse(
        project=version.project, registry_version=version.version, registry_hash=version.hash,
        registry_applied_at=to_micros(version.applied_at), granero_version=granero_version,
    )


# -- client side: messages -> dataclasses ---------------------------------------------------------


def view_info(message: pb.FeatureViewInfo) -> FeatureViewInfo:
    return FeatureViewInfo(
        name=message.name, description=message.description, owner=message.owner,
        tags=dict(message.tags), entities=list(message.entities),
        join_keys={c.name: c.dtype for c in message.join_keys},
        features=[Column(c.name, c.dtype, c.description, dict(c.tags)) for c in message.features],
        ttl=timedelta(seconds=message.ttl_seconds), online=message.online,
        on_demand=message.on_demand,
        request_fields={c.name: c.dtype for c in message.request_fields},
    )


def service_info(message: pb.FeatureServiceInfo) -> FeatureServiceInfo:
    return FeatureServiceInfo(name=message.name, description=message.description,
                              owner=message.owner, tags=dict(message.tags),
                              features=list(message.features))


def server_info(message: pb.GetServerInfoResponse) -> ServerInfo:
    return ServerInfo(project=message.project, registry_version=message.registry_version,
                      registry_hash=message.registry_hash,
                      registry_applied_at=from_micros(message.registry_applied_at),
                      granero_version=message.granero_version)
