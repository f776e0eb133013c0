"""``granero get-online --request``: request values for on-demand features, typed by their fields.

One ``--request FIELD=VALUE[,FIELD=VALUE...]`` per entity row, in ``--entity`` order (a single
``--request`` applies to every row; with no ``--entity``, each ``--request`` is a row of its
own, for views that read request values only). Scalars parse by the field's dtype as join keys
do (timestamps in ISO 8601, naive = UTC); ``list<...>`` values are JSON arrays (``[1, 2]``), and
``null`` is a null value. The server or the library then checks each value as it checks any.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest
from granero.types import list_element

if TYPE_CHECKING:
    from granero.feature_store import FeatureStore
    from granero.serving.info import FeatureViewInfo

_NUMBERS = {"float32": float, "float64": float}


def parse_requests(texts: list[str], fields: dict[str, str], rows: int) -> list[dict[str, Any]]:
    """A dict of typed request values per entity row (``rows`` of them)."""
    parsed = [_parse_request(text, fields) for text in texts]
    if len(parsed) == 1 and rows > 1:
        return parsed * rows
    if parsed and len(parsed) != rows:
        raise InvalidRequest(f"{len(parsed)} --request for {rows} --entity rows; give one per "
                             "entity row, or one for all")
    return parsed


def _parse_request(text: str, fields: dict[str, str]) -> dict[str, Any]:
    unknown = f"is not a request field of the requested on-demand features; they take {sorted(fields)}"
    return parse_assignments("--request", "FIELD", text, _split(text), fields, unknown,
                             parse_request_value)


def parse_assignments(option: str, label: str, text: str, parts: list[str], dtypes: dict[str, str],
                      unknown: str, parse: Callable[[str, str, str], Any]) -> dict[str, Any]:
    """``NAME=VALUE`` ``parts`` of one ``option`` text, each value parsed by its name's dtype;
    InvalidRequest quotes the text and says what is wrong (``unknown``: for a name not in
    ``dtypes``)."""
    values = {}
    for part in parts:
        name, sep, raw = (s.strip() for s in part.partition("="))
        if not sep or not name:
            raise InvalidRequest(f"{option} {text!r}: {part!r} must look like {label}=VALUE")
        if name not in dtypes:
            raise InvalidRequest(f"{option} {text!r}: {name!r} {unknown}")
        values[name] = parse(name, raw, dtypes[name])
    return values


def _split(text: str) -> list[str]:
    """``a=1,b=[1, 2]`` -> ``["a=1", "b=[1, 2]"]``: commas inside brackets stay."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def parse_request_value(name: str, raw: str, dtype: str) -> Any:
    """A request value from text, by its field's dtype."""
    from granero.cli.serving_cmds import parse_key_value

    if raw == "null":
        return None
    element = list_element(dtype)
    try:
        if element is not None:
            items = json.loads(raw)
            if not isinstance(items, list):
                raise ValueError(raw)
            if element == "timestamp":
                return [None if item is None else parse_key_value(name, str(item), element)
                        for item in items]
            return items
        if dtype in _NUMBERS:
            return float(raw)
    except ValueError:
        raise InvalidRequest(f"--request {name}={raw!r}: not a valid {dtype}") from None
    return parse_key_value(name, raw, dtype)


def local_shape(store: FeatureStore, refs: list[str] | None, service: str | None
                ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Join key dtypes, request field dtypes and output column dtypes of a request, from the
    registry (on-demand views' inputs included)."""
    from granero.definitions.refs import resolve_features
    from granero.on_demand.request import split_request

    defs = store.registered()
    split = split_request(defs, refs, service)
    views = resolve_features(defs, features=split.lookups) if split.lookups else []
    keys = {k: d for v in views for k, d in v.join_keys.items()}
    fields = {f.name: f.dtype for od in split.on_demand for f in od.view.request_fields}
    dtypes = {f"{v.view.name}__{f.name}": f.dtype for v in views for f in v.view.output_fields}
    dtypes.update({f"{od.view.name}__{f.name}": f.dtype for od in split.on_demand
                   for f in od.view.features})
    return keys, fields, dtypes


def remote_shape(views: list[FeatureViewInfo]) -> tuple[dict[str, str], dict[str, str],
                                                         dict[str, str]]:
    """``local_shape`` from the server's descriptions of the views a request reads."""
    keys = {k: d for v in views for k, d in v.join_keys.items()}
    fields = {name: dtype for v in views for name, dtype in v.request_fields.items()}
    dtypes = {f"{v.name}__{c.name}": c.dtype for v in views for c in v.features}
    return keys, fields, dtypes
