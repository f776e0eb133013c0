"""Registry commands: init, plan, apply, list, describe."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from granero.cli.common import (
    JsonOption,
    RepoOption,
    console,
    error_console,
    handles_errors,
    open_store,
    print_json,
)
from granero.definitions.display import aggregate_view_details, aggregation_text, dump_as_written
from granero.definitions.duration import format_duration
from granero.registry import Change

if TYPE_CHECKING:
    from granero.feature_store import FeatureInfo

list_app = typer.Typer(help="Discover what is registered: entities, views, services, features.")


class Section(StrEnum):
    entities = "entities"
    views = "views"
    services = "services"
    features = "features"


TagOption = Annotated[list[str] | None, typer.Option("--tag", help="Filter by tag KEY=VALUE (repeatable).")]
OwnerOption = Annotated[str | None, typer.Option("--owner", help="Filter by owner.")]


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(plan)
    app.command()(apply)
    app.command()(describe)
    app.add_typer(list_app, name="list")
    list_app.command("entities")(_lister(Section.entities))
    list_app.command("views")(_lister(Section.views))
    list_app.command("services")(_lister(Section.services))
    list_app.command("features")(list_features)


@handles_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the repo in.")],
    project: Annotated[str | None, typer.Option(help="Project name (default: the folder's name).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Scaffold a new feature repo that applies and materializes out of the box."""
    from granero.repo.scaffold import init_repo

    written = init_repo(directory, project)
    if json_output:
        print_json({"created": [str(p) for p in written]})
        return
    for path in written:
        console.print(f"created {path}")
    console.print(f"next: granero apply --repo {directory}")


@handles_errors
def plan(repo: RepoOption = Path("."), json_output: JsonOption = False) -> None:
    """Show what apply would change, field by field, without writing anything."""
    result = open_store(repo).plan()
    if json_output:
        print_json({"current_version": result.current_version, "breaking": result.breaking,
                    "changes": [_change_json(c) for c in result.changes]})
        return
    _print_changes(result.changes)
    for reason in result.breaking:
        console.print(f"[bold red]breaking:[/] {reason}")


@handles_errors
def apply(
    repo: RepoOption = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Apply even changes that break stored data.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Validate the repo's definitions and record them as a new registry version."""
    from granero.offline.sources import missing_source_paths
    from granero.online.cleanup import OnlineCleanup

    store = open_store(repo)
    result, version = store.apply(force=force)
    warnings = missing_source_paths(result.definitions, store.repo_path)
    for warning in warnings:
        error_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    online = result.online or OnlineCleanup()
    for view, reason in online.left.items():
        error_console.print(f"[bold yellow]warning:[/] online data of removed view {view!r} left: {reason}; "
                            "`granero online prune` drops it later", highlight=False, soft_wrap=True)
    if json_output:
        print_json({"version": version and version.version, "hash": version and version.hash,
                    "changes": [_change_json(c) for c in result.changes], "warnings": warnings,
                    "online_dropped": online.dropped, "online_left": online.left})
        return
    _print_changes(result.changes)
    for view, count in online.dropped.items():
        console.print(f"dropped the online data of removed view {view!r} ({count} keys)")
    if version is None:
        console.print("registry unchanged: definitions match the current version")
    else:
        console.print(f"applied registry version {version.version} ({version.hash[:12]})")


@handles_errors
def describe(name: str, repo: RepoOption = Path("."), json_output: JsonOption = False) -> None:
    """Show one registered entity, feature view or feature service in full."""
    obj = open_store(repo).describe(name)
    data = dump_as_written(obj)
    details = aggregate_view_details(obj) if getattr(obj, "is_aggregate", False) else None
    if json_output:
        print_json({"kind": obj.kind, **data, **({"derived": details} if details else {})})
        return
    console.print(f"[bold]{obj.kind}[/] {name}")
    if details:
        _print_aggregate_details(details, data["ttl"])
    console.print_json(data=data)


def _print_aggregate_details(details: dict, ttl: str) -> None:
    origin = "declared" if details["hop_declared"] else "default for its windows"
    console.print(f"aggregate view: hop {details['hop']} ({origin}), ttl {ttl} (largest window + hop)")
    _print_rows("served features", details["served_features"])
    columns = ", ".join(f"{c['name']} {c['dtype']}" for c in details["event_columns"])
    console.print(f"event columns (stored offline per event, read by the aggregates, not served): {columns}",
                  highlight=False)


def _lister(section: Section):
    @handles_errors
    def list_command(
        repo: RepoOption = Path("."), tag: TagOption = None, owner: OwnerOption = None,
        json_output: JsonOption = False,
    ) -> None:
        store, tags = open_store(repo), _parse_tags(tag)
        rows = _rows(store, section, tags, owner, human=not json_output)
        if json_output:
            print_json(rows)
        else:
            _print_rows(section.value, rows)

    list_command.__doc__ = f"List registered {section.value} (filter with --tag and --owner)."
    return list_command


PiiFlag = Annotated[bool, typer.Option(
    "--pii", help="Only personal data: features tagged access.pii_tag (or derived from one), "
                  "which the server withholds from callers without a PII grant.")]


@handles_errors
def list_features(
    repo: RepoOption = Path("."), tag: TagOption = None, owner: OwnerOption = None,
    pii: PiiFlag = False, json_output: JsonOption = False,
) -> None:
    """List registered features (filter with --tag, --owner and --pii)."""
    from granero.access.pii import is_pii

    store, tags = open_store(repo), _parse_tags(tag)
    features = store.list_features(tags, owner)
    if pii:
        views, pii_tag = store.registered().feature_views, store.config.access.pii_tag
        features = [f for f in features if is_pii(views[f.view], f.name, pii_tag, views)]
    rows = [_feature_row(f, not json_output) for f in features]
    if json_output:
        print_json(rows)
    else:
        _print_rows(Section.features.value, rows)


def _rows(store, section: Section, tags: dict[str, str], owner: str | None, human: bool) -> list[dict]:
    if section is Section.features:
        return [_feature_row(f, human) for f in store.list_features(tags, owner)]
    listing = {Section.entities: store.list_entities, Section.views: store.list_feature_views,
               Section.services: store.list_feature_services}[section]
    return [_summary(obj) for obj in listing(tags, owner)]


def _feature_row(feature: FeatureInfo, human: bool) -> dict:
    """``aggregation`` is what an aggregate computes: ``mean(fare) over 7d`` for people, the
    definition's fields for ``--json``; empty (null) for a plain view's feature."""
    aggregation = feature.aggregation
    if aggregation is not None:
        aggregation = aggregation_text(aggregation) if human else dump_as_written(aggregation)
    return {"view": feature.view, "feature": feature.name, "dtype": feature.dtype,
            "aggregation": aggregation, "owner": feature.owner, "tags": feature.tags,
            "description": feature.description}


def _summary(obj) -> dict:
    row = {"name": obj.name, "owner": obj.owner, "tags": obj.tags, "description": obj.description}
    if obj.kind == "entity":
        row["join_keys"] = obj.join_keys
    elif obj.kind == "feature_view":
        row |= {"entities": obj.entity_names, "features": len(obj.output_fields),
                "ttl": format_duration(obj.ttl),
                "hop": format_duration(obj.resolved_hop) if obj.is_aggregate else None}
    else:
        row["views"] = [s.view_name for s in obj.features]
    return row


def _parse_tags(values: list[str] | None) -> dict[str, str]:
    tags = {}
    for value in values or []:
        key, sep, tag_value = value.partition("=")
        if not sep:
            raise typer.BadParameter(f"--tag {value!r} must look like KEY=VALUE")
        tags[key] = tag_value
    return tags


def _print_rows(title: str, rows: list[dict]) -> None:
    if not rows:
        console.print(f"no {title} match")
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(v) for v in row.values()])
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _change_json(change: Change) -> dict:
    return {"kind": change.kind, "name": change.name, "op": change.op,
            "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in change.fields]}


_STYLE = {"added": "green", "changed": "yellow", "removed": "red"}
_SIGN = {"added": "+", "changed": "~", "removed": "-"}


def _print_changes(changes: list[Change]) -> None:
    if not changes:
        console.print("no changes")
    for change in changes:
        style = _STYLE[change.op]
        console.print(f"[{style}]{_SIGN[change.op]} {change.kind} {change.name} ({change.op})[/]")
        for field in change.fields:
            console.print(f"    {field.path}: {field.old!r} -> {field.new!r}", highlight=False)
