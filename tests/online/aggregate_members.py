"""Writing an aggregate view's members for read-side tests: every entity of ``events`` rewritten
whole (DEL + ZADD), from ``aggregation.suffix.suffix_values`` and ``encode_members``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from granero.aggregation.spec import aggregation_spec
from granero.aggregation.suffix import suffix_values
from granero.online.aggregate_encoding import encode_members, layout_of
from granero.online.encoding import encode_entity_keys


def write_events(store, defs, view, events: pa.Table) -> int:
    """Members of every entity with events; returns how many were written."""
    spec = aggregation_spec(defs, view)
    suffixes = suffix_values(events, spec)
    members = encode_members(layout_of(spec), suffixes.tile, (suffixes.newest, suffixes.created), suffixes.values)
    keyed = events.take(pa.array(suffixes.row))
    keys = encode_entity_keys(list(spec.keys.values()), [keyed[k].combine_chunks() for k in spec.keys])
    prefix = store._prefix(view.name)
    pipe = store.client.pipeline(transaction=True)
    for key in dict.fromkeys(keys):
        pipe.delete(prefix + key)
    for key, member, tile in zip(keys, members, np.asarray(suffixes.tile).tolist(), strict=True):
        pipe.zadd(prefix + key, {member: tile})
    pipe.execute()
    return len(members)
