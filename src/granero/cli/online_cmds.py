"""Online store commands: sync, verify, online start, stop, status and prune."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from granero.cli.common import (
    JsonOption,
    RepoOption,
    console,
    handles_errors,
    open_store,
    print_json,
)
from granero.errors import VerificationFailed

online_app = typer.Typer(
    help="Manage the online store (the embedded Redis server).", no_args_is_help=True
)

ViewsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--views",
        "-v",
        help="Views to sync (repeatable or comma-separated; default: all online views).",
    ),
]
SampleOption = Annotated[
    int,
    typer.Option(
        "--sample",
        "-n",
        min=1,
        help="Check every entity of a view with at most this many, else this many at random.",
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now", help="Compare as of this ISO 8601 time (UTC when no offset; default: now)."
    ),
]


def register(app: typer.Typer) -> None:
    app.command()(sync)
    app.command()(verify)
    app.add_typer(online_app, name="online")
    online_app.command("start")(start)
    online_app.command("stop")(stop)
    online_app.command("status")(status)
    online_app.command("prune")(prune)


@handles_errors
def sync(
    repo: RepoOption = Path("."), views: ViewsOption = None, json_output: JsonOption = False
) -> None:
    """Copy each online view's latest offline rows to the online store (write-if-newer)."""
    with open_store(repo) as store:
        names = _split(views) or [v.name for v in store.list_feature_views() if v.online]
        counts = _sync_with_progress(store, names, show=not json_output)
    if json_output:
        print_json(counts)
        return
    table = Table(title="online sync")
    table.add_column("view")
    table.add_column("rows stored", justify="right")
    for name in names:
        table.add_row(name, str(counts[name]) if name in counts else "skipped (online=False)")
    console.print(table)


@handles_errors
def verify(
    repo: RepoOption = Path("."),
    sample: SampleOption = 100_000,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that online lookups serve the offline point-in-time values (exit 9 on a mismatch)."""
    moment = _parse_time(now)
    with open_store(repo) as store:
        report = store.verify(sample=sample, now=moment)
    if json_output:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        wrong = sum(view.mismatches for view in report.views)
        raise VerificationFailed(
            f"{wrong} online value(s) differ from the offline values as of {report.now.isoformat()}"
        )


@handles_errors
def start(repo: RepoOption = Path("."), json_output: JsonOption = False) -> None:
    """Start the repo's embedded Redis server and keep it running until `granero online stop`
    (otherwise the last command using it stops it when done)."""
    from granero.errors import ConfigError
    from granero.online.embedded import EmbeddedRedis, EmbeddedRedisConfig

    config = open_store(repo).config.online_store
    if not isinstance(config, EmbeddedRedisConfig):
        raise ConfigError("online start: the online store is an external Redis, not embedded")
    server = EmbeddedRedis(config.data_dir).start(keep=True)
    info = {"port": server.port, "pid": server.pid, "data_dir": str(server.data_dir)}
    if json_output:
        print_json(info)
    else:
        console.print(f"embedded online store running on 127.0.0.1:{server.port} (kept)")


@handles_errors
def stop(repo: RepoOption = Path("."), json_output: JsonOption = False) -> None:
    """Stop the repo's embedded Redis server, saving its data (SHUTDOWN SAVE)."""
    stopped = open_store(repo).stop_online()
    if json_output:
        print_json({"stopped": stopped})
    else:
        console.print(
            "stopped the embedded online store"
            if stopped
            else "no embedded online store was running"
        )


@handles_errors
def status(repo: RepoOption = Path("."), json_output: JsonOption = False) -> None:
    """Show where the online store is and whether it answers."""
    from granero.online.embedded import EmbeddedRedis, EmbeddedRedisConfig

    config = open_store(repo).config.online_store
    if isinstance(config, EmbeddedRedisConfig):
        server = EmbeddedRedis(config.data_dir).running()
        info = {
            "type": "embedded",
            "data_dir": config.data_dir,
            "running": server is not None,
            "port": server and server.port,
            "pid": server and server.pid,
        }
    else:
        info = {"type": "redis", "url": config.settings().safe_url, "cluster": config.cluster}
    if json_output:
        print_json(info)
    else:
        console.print(", ".join(f"{k}: {v}" for k, v in info.items()), highlight=False)


@handles_errors
def prune(
    repo: RepoOption = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the views it would drop.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Drop the online data of views that are not registered (left by an apply that could not
    reach Redis): their keys, freshness and stream progress. Offline tables stay."""
    cleanup = open_store(repo).prune_online(dry_run=dry_run)
    if json_output:
        print_json({"dry_run": dry_run, "dropped": cleanup.dropped, "left": cleanup.left})
        return
    for view, count in cleanup.dropped.items():
        console.print(f"would drop view {view!r}" if dry_run else f"dropped view {view!r}: {count} keys")
    for view, reason in cleanup.left.items():
        console.print(f"left view {view!r}: {reason}")
    if not cleanup.dropped and not cleanup.left:
        console.print("no online data of unregistered views")


def _sync_with_progress(store, names: list[str], show: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("syncing", total=len(names))
        for name in names:
            progress.update(task, description=f"syncing {name}")
            counts.update(store.sync_online([name]))
            progress.advance(task)
    return counts


def _print_report(report) -> None:
    table = Table(title=f"online vs offline as of {report.now.isoformat()}")
    for column in ("view", "checked", "of", "engine", "mismatches", "first mismatch"):
        numeric = column in ("checked", "of", "mismatches")
        table.add_column(column, justify="right" if numeric else "left")
    for view in report.views:
        first = view.examples[0] if view.examples else None
        example = _describe_mismatch(first) if first else ""
        style = "red" if view.mismatches else "green"
        table.add_row(view.view, str(view.checked), str(view.total), view.engine,
                      f"[{style}]{view.mismatches}[/]", example)
    console.print(table)


def _describe_mismatch(mismatch) -> str:
    return (
        f"{mismatch.entity} {mismatch.feature}: offline={mismatch.offline!r} "
        f"online={mismatch.online!r} ({mismatch.status})"
    )


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"--now {text!r} is not an ISO 8601 time (e.g. 2026-01-08T00:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
