"""The one way from a registered aggregate view to what the engines compute (``AggregationSpec``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.aggregation.engine import AggregationSpec

if TYPE_CHECKING:
    from granero.definitions import FeatureView, RepoDefinitions


def aggregation_spec(defs: RepoDefinitions, view: FeatureView) -> AggregationSpec:
    """Typed join keys (entity order), the hop and every aggregate of ``view``; the columns an
    aggregate reads are the view's event columns or its join keys (checked at apply)."""
    keys = defs.join_keys(view)
    dtypes = {**keys, **{f.name: f.dtype for f in view.features}}
    return AggregationSpec.of(keys, view.aggregations, dtypes, view.resolved_hop)
