"""On-demand feature views: features computed by a Python transform when they are asked for.

An on-demand view reads features of other views (as of the request, or as of each training row)
and values that arrive with the request (a ``RequestSource``), and computes its output features
with one Python function. The same function object runs for serving and for training
(``granero.on_demand.run_transform``). Two forms:

- ``mode="vectorized"`` (the fast one): ``transform(columns) -> columns``, a dict of input name ->
  ``pyarrow.Array`` in, a dict of output name -> array (pyarrow, numpy or a list) out, all of the
  batch's length. It runs unchanged on one request and on a million training rows.
- ``mode="row"`` (slower, for convenience): ``transform(row) -> row``, a dict of Python values in
  and out, called once per row.

Inputs reach the transform by their bare names (a view's feature ``conv_rate``, a request field
``pickup_lat``), so those names must be unique across the view's inputs. The registry keeps the
view as data plus its ``code`` identity (``transform_code``); the function itself is never
pickled into it: servers and jobs load it from the repo's files and check its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Discriminator, Tag, field_validator, model_validator
from pydantic import Field as PydanticField

from granero.definitions.base import Definition, Model
from granero.definitions.feature_view import FeatureView
from granero.definitions.field import Field
from granero.definitions.transform_code import TransformCode, with_code
from granero.types import parse_dtype

if TYPE_CHECKING:
    from granero.definitions.feature_service import FeatureSelection
    from granero.definitions.repo_definitions import RepoDefinitions

Mode = Literal["vectorized", "row"]


def _typed_fields(fields: list[Field], what: str) -> list[Field]:
    """Each field with its dtype normalised; ValueError naming a bad dtype or a duplicate."""
    if not fields:
        raise ValueError(f"at least one {what} is needed")
    typed = []
    for field in fields:
        try:
            typed.append(field.model_copy(update={"dtype": parse_dtype(field.dtype)}))
        except ValueError as error:
            raise ValueError(f"{what} {field.name!r}: {error}") from None
    names = [f.name for f in typed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate {what} names {duplicates}")
    return typed


class RequestSource(Definition):
    """Typed values that arrive with each request (and as columns of a training entity frame)."""

    kind: ClassVar[str] = "request_source"

    fields: list[Field]

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value:
            raise ValueError("a request source needs a name")
        return value

    @field_validator("fields")
    @classmethod
    def _typed(cls, value: list[Field]) -> list[Field]:
        return _typed_fields(value, "request field")


class FeatureInput(Model):
    """Features of one view read by an on-demand view (None: every feature it serves)."""

    view: str | FeatureView
    features: list[str] | None = None

    @property
    def view_name(self) -> str:
        return self.view.name if isinstance(self.view, FeatureView) else self.view


def _as_inputs(value: object) -> object:
    """Views (objects or names) and ``view[[...]]`` selections as ``FeatureInput``; request
    sources as they are."""
    if not isinstance(value, list):
        return value
    return [_as_input(item) for item in value]


def _as_input(item: object) -> object:
    if isinstance(item, FeatureView | str):
        return FeatureInput(view=item)
    from granero.definitions.feature_service import FeatureSelection  # it imports this module

    if isinstance(item, FeatureSelection):
        return FeatureInput(view=item.view, features=item.features)
    return item


def _input_kind(value: object) -> str:
    if isinstance(value, dict):
        return "request" if "fields" in value else "features"
    return "request" if isinstance(value, RequestSource) else "features"


Input = Annotated[
    Annotated[FeatureInput, Tag("features")] | Annotated[RequestSource, Tag("request")],
    Discriminator(_input_kind),
]
"""One input: features of a view, or a request source (told apart by their fields)."""


class OnDemandFeatureView(Definition):
    """Features computed at request time (and per training row) by a Python ``transform``."""

    kind: ClassVar[str] = "on_demand_feature_view"

    inputs: Annotated[list[Input], BeforeValidator(_as_inputs)]
    features: list[Field]
    """The outputs, typed: the transform must return each, convertible without loss."""
    transform: Callable[..., Any] | None = PydanticField(default=None, exclude=True)
    """Not stored in the registry (``code`` is): present when loaded from the repo's files."""
    mode: Mode = "vectorized"
    code: TransformCode | None = None
    """Set from ``transform``; the registry's copy of the view carries only this."""

    @model_validator(mode="before")
    @classmethod
    def _identify(cls, data: Any) -> Any:
        """``code`` is computed from ``transform``: given alone it is the registry's form."""
        return with_code(data, "transform")

    @field_validator("inputs")
    @classmethod
    def _has_inputs(cls, value: list) -> list:
        if not value:
            raise ValueError("an on-demand view needs at least one input")
        return value

    @field_validator("features")
    @classmethod
    def _typed_outputs(cls, value: list[Field]) -> list[Field]:
        return _typed_fields(value, "feature")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def output_fields(self) -> list[Field]:
        """What is served and trained on: the declared features."""
        return self.features

    @property
    def output_names(self) -> list[str]:
        return self.feature_names

    @property
    def feature_inputs(self) -> list[FeatureInput]:
        return [i for i in self.inputs if isinstance(i, FeatureInput)]

    @property
    def request_sources(self) -> list[RequestSource]:
        return [i for i in self.inputs if isinstance(i, RequestSource)]

    @property
    def request_fields(self) -> list[Field]:
        return [f for source in self.request_sources for f in source.fields]

    def __getitem__(self, names: str | list[str]) -> FeatureSelection:
        """``view[["a"]]`` selects some of its features for a service, like a feature view."""
        from granero.definitions.feature_service import FeatureSelection

        return FeatureSelection(view=self, features=[names] if isinstance(names, str) else names)


def on_demand_feature_view(
    *, inputs: list, features: list[Field], mode: Mode = "vectorized", **metadata: Any
) -> Callable[[Callable], OnDemandFeatureView]:
    """Decorator form: the decorated function becomes the transform of a view of its name (its
    docstring's first line the description, unless given)."""

    def declare(function: Callable) -> OnDemandFeatureView:
        given = {"name": function.__name__, "description": _first_line(function.__doc__), **metadata}
        return OnDemandFeatureView(inputs=inputs, features=features, mode=mode, transform=function, **given)

    return declare


# -- compiling and checking against the rest of the repo -------------------------------------------


def resolve_on_demand(
    view: OnDemandFeatureView, view_names: dict[int, str], served: dict[str, list[str]]
) -> OnDemandFeatureView:
    """The view with its input views named (``view_names``: object id -> compiled name) and their
    features listed (``served``: view name -> what it serves), so the registry states them."""
    inputs = [_resolved_input(i, view_names, served) for i in view.inputs]
    copy = view.model_copy(update={"inputs": inputs})
    copy._origin = view.origin
    return copy


def _resolved_input(
    given: FeatureInput | RequestSource, view_names: dict[int, str], served: dict[str, list[str]]
) -> FeatureInput | RequestSource:
    if isinstance(given, RequestSource):
        return given
    name = _ref(given.view, view_names)
    return FeatureInput(view=name, features=given.features or served.get(name))


def _ref(view: str | FeatureView, view_names: dict[int, str]) -> str:
    return view if isinstance(view, str) else view_names.get(id(view)) or view.name


def input_dtypes(repo: RepoDefinitions, view: OnDemandFeatureView) -> dict[str, str]:
    """Every input the transform receives, by name, with its dtype (checked: names exist and do
    not collide). Raises the view's DefinitionError naming the field."""
    dtypes: dict[str, str] = {}
    where: dict[str, str] = {}
    for index, given in enumerate(view.inputs):
        for name, dtype in _one_input(repo, view, given, f"inputs[{index}]"):
            if name in dtypes:
                raise view.fail(f"inputs[{index}]", f"input {name!r} is also given by {where[name]}; "
                                "inputs reach the transform by name, so names must be unique")
            dtypes[name], where[name] = dtype, _describe(given)
    return dtypes


def _one_input(
    repo: RepoDefinitions, view: OnDemandFeatureView, given: FeatureInput | RequestSource, field: str
) -> list[tuple[str, str]]:
    if isinstance(given, RequestSource):
        return [(f.name, f.dtype) for f in given.fields]
    source = repo.feature_views.get(given.view_name)
    if source is None:
        other = " (an on-demand view cannot read another)" if given.view_name in repo.on_demand_feature_views else ""
        raise view.fail(field, f"unknown feature view {given.view_name!r}{other}; known: {sorted(repo.feature_views)}")
    served = {f.name: f.dtype for f in source.output_fields}
    names = given.features or list(served)
    unknown = [n for n in names if n not in served]
    if unknown:
        raise view.fail(field, f"feature view {source.name!r} has no features {unknown}; it has {list(served)}")
    return [(n, served[n]) for n in names]


def _describe(given: FeatureInput | RequestSource) -> str:
    if isinstance(given, RequestSource):
        return f"request source {given.name!r}"
    return f"feature view {given.view_name!r}"


def check_on_demand(repo: RepoDefinitions, view: OnDemandFeatureView) -> None:
    """Cross-definition checks: inputs exist and are unique; outputs do not shadow inputs."""
    inputs = input_dtypes(repo, view)
    shadowed = [f.name for f in view.features if f.name in inputs]
    if shadowed:
        raise view.fail("features", f"outputs {shadowed} have the names of inputs; rename them")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]
