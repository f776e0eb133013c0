"""``granero status``: per view, how fresh its online values are and where its writers stand.

Exit codes: 0 shown; 3 nothing applied yet or the registry is unreadable; 7 the online store
does not answer; 8 an unknown view was asked for; 14 with ``--stale-after``, a shown online
view's latest event online is older than that (or was never written), after the report is printed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from granero.cli.common import JsonOption, RepoOption, console, handles_errors, open_store, print_json
from granero.definitions.duration import parse_duration
from granero.errors import StaleViews, UnknownName

ViewsOption = Annotated[
    list[str] | None,
    typer.Option("--views", "-v", help="Views to show (repeatable or comma-separated; default: all)."),
]
StaleAfterOption = Annotated[
    str | None,
    typer.Option("--stale-after", metavar="DURATION", help=(
        "Exit 14 when a shown online view's latest event online is older than this (15m, 2h, 1d; "
        "a view never written online counts as stale); the report is printed first.")),
]


def register(app: typer.Typer) -> None:
    app.command()(status)


@handles_errors
def status(repo: RepoOption = Path("."), views: ViewsOption = None, json_output: JsonOption = False,
           stale_after: StaleAfterOption = None) -> None:
    """Each view's latest event time online and its age, last materialization, windows not yet
    synced online, and its stream's last micro-batch."""
    from granero.freshness.report import freshness_report, stale_views

    threshold = stale_threshold(stale_after)
    with open_store(repo) as store:
        known = store.registered().feature_views
        names = chosen_views(views, list(known))
        named = [(name, known[name].online) for name in names]
        report = freshness_report(store.online_store, store.registry, named, datetime.now(UTC))
    stale = stale_views(report, threshold) if threshold is not None else []
    if json_output:
        judged = threshold is not None  # "stale" only when asked
        print_json([view.to_json() | ({"stale": view in stale} if judged else {}) for view in report])
    else:
        console.print(status_table(report))
    if stale:
        raise StaleViews(f"{len(stale)} view(s) older than --stale-after {stale_after}: "
                         + ", ".join(f"{v.view} ({_age(v.age_seconds) or 'never written online'})" for v in stale))


def stale_threshold(text: str | None) -> timedelta | None:
    """``--stale-after`` as a duration (None when not given); a bad one is a usage error."""
    if text is None:
        return None
    parsed = parse_duration(text)
    if not isinstance(parsed, timedelta) or parsed <= timedelta(0):
        raise typer.BadParameter(f"{text!r} is not a duration like 15m, 2h or 1d", param_hint="--stale-after")
    return parsed


def chosen_views(asked: list[str] | None, known: list[str]) -> list[str]:
    """The views named by ``--views`` (all when none), checked against the registry."""
    names = [part.strip() for value in asked or [] for part in value.split(",") if part.strip()]
    for name in names:
        if name not in known:
            raise UnknownName(f"--views: no feature view {name!r} is registered (known: {', '.join(known)})")
    return names or known


def status_table(report) -> Table:
    table = Table(title="freshness")
    for column in ("view", "latest event online", "age", "last materialized", "ran at",
                   "pending sync", "stream (batch, rows, dead letters, at)"):
        table.add_column(column)
    for view in report:
        run, stream = view.last_run, view.stream
        table.add_row(
            view.view,
            _time(view.latest_event) if view.online else "offline only",
            _age(view.age_seconds),
            f"{_time(run.interval.start)} → {_time(run.interval.end)}" if run else "never",
            _time(run.ran_at) if run else "",
            ", ".join(f"{_time(i.start)} → {_time(i.end)}" for i in view.pending) or "none",
            f"{stream.batch_id}, {stream.rows}, {stream.dead_letters}, {_time(stream.at)}" if stream else "",
        )
    return table


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "never"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return str(timedelta(seconds=round(seconds))) if seconds >= 0 else f"{-seconds:.0f} s in the future"
