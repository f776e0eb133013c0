"""Personal data: fields tagged ``pii: "true"`` (the tag name is ``access.pii_tag``).

Derived features inherit it: an aggregation is personal data when the column it reads is (a
count of distinct e-mail addresses still says something about the person), and an on-demand
feature is when any feature its transform reads is.
"""

from __future__ import annotations

from typing import Any

TRUE_VALUES = frozenset({"true", "yes", "1"})


def tagged(field: Any, tag: str) -> bool:
    return str(field.tags.get(tag, "")).lower() in TRUE_VALUES


def is_pii(view: Any, name: str, tag: str = "pii", views: dict[str, Any] | None = None) -> bool:
    """Whether the served feature ``name`` of ``view`` (a feature view or an on-demand view) is
    personal data; ``views`` (by name) resolves an on-demand view's inputs."""
    columns = {f.name: f for f in view.features}
    for aggregation in getattr(view, "aggregations", ()):
        if aggregation.name == name:
            name = aggregation.column
    field = columns.get(name)
    if field is not None and tagged(field, tag):
        return True
    return any(is_pii(views[i.view_name], feature, tag, views)
               for i in getattr(view, "feature_inputs", ()) if views and i.view_name in views
               for feature in (i.features or served(views[i.view_name])))


def served(view: Any) -> list[str]:
    """The names a read may ask of a view (an aggregate view serves its aggregations)."""
    return list(getattr(view, "output_names", view.feature_names))


def pii_features(view: Any, tag: str = "pii", views: dict[str, Any] | None = None) -> list[str]:
    """The served features of ``view`` that are personal data, in order."""
    return [name for name in served(view) if is_pii(view, name, tag, views)]
