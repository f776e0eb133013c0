"""Code identity at run time: is the transform about to run the one that was applied?

The registry records each on-demand view's ``code`` (``definitions.transform_code``) on apply.
A server or a training job loads the repo's files (as every command does), takes each view's
function from them, and compares the loaded code's hash with the registered one before running
it. A different source hash is refused (``TransformCodeChanged``): the code changed after
``apply``, or the server runs other files than the ones applied. Library versions that differ
(``pyarrow``, ``numpy``) are reported by ``library_drift`` but not refused: a patch release must
not take serving down; callers log or show them.
"""

from __future__ import annotations

from granero.definitions.on_demand import OnDemandFeatureView
from granero.definitions.repo_definitions import RepoDefinitions
from granero.errors import TransformCodeChanged


def check_code_identity(registered: OnDemandFeatureView, loaded: OnDemandFeatureView) -> None:
    """Raise ``TransformCodeChanged`` unless ``loaded`` has the registered view's source hash."""
    if registered.code is None or loaded.code is None:
        raise TransformCodeChanged(f"on-demand feature view {registered.name!r}: no code identity recorded")
    if loaded.code.source_hash != registered.code.source_hash:
        raise TransformCodeChanged(
            f"on-demand feature view {registered.name!r}: the transform loaded from the repo "
            f"({loaded.code.ref}, {loaded.origin}, hash {loaded.code.source_hash[:12]}) is not the "
            f"code applied (hash {registered.code.source_hash[:12]}); run `granero apply` "
            "(and retrain on it), or serve the files that were applied"
        )
    if _data(loaded) != _data(registered):
        raise TransformCodeChanged(
            f"on-demand feature view {registered.name!r}: its definition in the repo ({loaded.origin}) "
            "differs from the one applied; run `granero apply`, or serve the files that were applied"
        )


def _data(view: OnDemandFeatureView) -> dict:
    return view.model_dump(mode="json", exclude={"code", "name", "description", "owner", "tags"})


def library_drift(registered: OnDemandFeatureView) -> dict[str, tuple[str, str]]:
    """Library -> (version at apply, version here), for the versions that differ."""
    from granero.definitions.transform_code import library_versions

    recorded = registered.code.libraries if registered.code else {}
    here = library_versions()
    return {name: (version, here.get(name, "absent")) for name, version in recorded.items()
            if here.get(name, "absent") != version}


def loaded_views(registered: RepoDefinitions, loaded: RepoDefinitions, names: list[str] | None = None
                 ) -> dict[str, OnDemandFeatureView]:
    """The registered on-demand views (``names``, else all) with the repo's loaded functions
    attached, each checked against its registered hash."""
    views = {}
    for name in registered.on_demand_feature_views if names is None else names:
        view = registered.on_demand_feature_views[name]
        current = loaded.on_demand_feature_views.get(name)
        if current is None:
            raise TransformCodeChanged(
                f"on-demand feature view {name!r} is registered but not defined in the repo's files; "
                "serve the files that were applied, or run `granero apply`"
            )
        check_code_identity(view, current)
        views[name] = with_transform(view, current)
    return views


def with_transform(registered: OnDemandFeatureView, loaded: OnDemandFeatureView) -> OnDemandFeatureView:
    """The registered definition (its data is what was applied) carrying the loaded function."""
    copy = registered.model_copy(update={"transform": loaded.transform})
    copy._origin = loaded.origin
    return copy
