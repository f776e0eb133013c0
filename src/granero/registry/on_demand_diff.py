"""What ``apply`` refuses for on-demand views: an output that keeps its name but changes dtype.

Nothing is stored for an on-demand view, but models trained on it read its outputs by name and
dtype: a changed dtype would feed them other values under the same name. A changed transform
(its ``code.source_hash``) is a change ``plan`` shows, not a breaking one: retraining follows it.
"""

from __future__ import annotations

from granero.definitions import RepoDefinitions


def on_demand_breaking(old: RepoDefinitions, new: RepoDefinitions) -> list[str]:
    """Outputs of on-demand views kept under their name with another dtype."""
    reasons = []
    for name, view in old.on_demand_feature_views.items():
        after = new.on_demand_feature_views.get(name)
        if after is None:
            continue
        dtypes = {f.name: f.dtype for f in after.features}
        reasons += [
            f"on-demand feature view {name!r}: output {f.name!r} changes dtype from {f.dtype} to "
            f"{dtypes[f.name]}; models trained on it read the old dtype"
            for f in view.features if f.name in dtypes and dtypes[f.name] != f.dtype
        ]
    return reasons
