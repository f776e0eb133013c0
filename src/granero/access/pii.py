"""Personal data: fields tagged ``pii: "true"`` (the tag name is ``access.pii_tag``).

An aggregation is personal data when the column it reads is: a count of distinct e-mail
addresses still says something about the person.
"""

from __future__ import annotations

from granero.definitions import FeatureView

TRUE_VALUES = frozenset({"true", "yes", "1"})


def is_pii(view: FeatureView, name: str, tag: str = "pii") -> bool:
    """Whether the served feature ``name`` of ``view`` is personal data."""
    columns = {f.name: f for f in view.features}
    for aggregation in getattr(view, "aggregations", ()):
        if aggregation.name == name:
            name = aggregation.column
    field = columns.get(name)
    return field is not None and field.tags.get(tag, "").lower() in TRUE_VALUES


def pii_features(view: FeatureView, tag: str = "pii") -> list[str]:
    """The served features of ``view`` that are personal data, in order."""
    served = getattr(view, "output_names", view.feature_names)
    return [name for name in served if is_pii(view, name, tag)]
