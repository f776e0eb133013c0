"""Offline commands: materialize, materialize-incremental, historical.

Thin over the FeatureStore: the commands parse, loop over views to show progress, and print.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from granero.cli.common import (
    JsonOption,
    RepoOption,
    console,
    handles_errors,
    open_store,
    print_json,
)

ViewsOption = Annotated[
    str | None, typer.Option("--views", help="Comma-separated feature views (default: all).")
]
NoSyncOption = Annotated[
    bool, typer.Option("--no-sync", help="Do not push the new latest values to the online store.")
]


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


def register(app: typer.Typer) -> None:
    app.command()(materialize)
    app.command("materialize-incremental")(materialize_incremental)
    app.command()(historical)


@handles_errors
def materialize(
    start: Annotated[
        str, typer.Argument(help="Window start, ISO 8601 (e.g. 2026-01-01T00:00:00Z).")
    ],
    end: Annotated[str, typer.Argument(help="Window end (exclusive), ISO 8601.")],
    views: ViewsOption = None,
    no_sync: NoSyncOption = False,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
) -> None:
    """Rebuild [START, END) of each view's offline table from its source (idempotent)."""
    from granero.offline.materialize import parse_time

    begin, finish = parse_time(start), parse_time(end)
    store = open_store(repo)
    _run_per_view(
        store,
        _view_names(store, views),
        json_output,
        lambda name: store.materialize(begin, finish, [name], sync_online=not no_sync),
    )


@handles_errors
def materialize_incremental(
    end: Annotated[str | None, typer.Argument(help="Window end, ISO 8601 (default: now).")] = None,
    views: ViewsOption = None,
    no_sync: NoSyncOption = False,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
) -> None:
    """Materialize each view from where its last run ended (or 1970) up to END."""
    from granero.offline.materialize import parse_time

    finish = parse_time(end) if end else datetime.now(UTC)
    store = open_store(repo)
    _run_per_view(
        store,
        _view_names(store, views),
        json_output,
        lambda name: store.materialize_incremental(finish, [name], sync_online=not no_sync),
    )


@handles_errors
def historical(
    entities: Annotated[
        str, typer.Option("--entities", help="Entity rows: a Parquet, CSV or Delta path.")
    ],
    out: Annotated[str, typer.Option("--out", help="Where to write the training set (a folder).")],
    features: Annotated[
        list[str] | None,
        typer.Option("--features", "-f", help="view:feature (repeatable or comma-separated)."),
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="A feature service name.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.parquet,
    plain_names: Annotated[
        bool, typer.Option("--plain-names", help="Columns 'feature', not 'view__feature'.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUT if it exists.")
    ] = False,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
) -> None:
    """Build a point-in-time-correct training set; its manifest goes to OUT.manifest.json.

    Small requests (a local Parquet entity file, Parquet out to a local path, few table rows) are
    answered in process without starting Spark; the result is the same.
    """
    refs = [
        ref.strip() for value in features or [] for ref in value.split(",") if ref.strip()
    ] or None
    store = open_store(repo)
    manifest_path = f"{out.rstrip('/')}.manifest.json"
    request = {"features": refs, "feature_service": service, "full_feature_names": not plain_names,
               "manifest_path": manifest_path}
    with (
        console.status("building the training set...", spinner="dots")
        if not json_output
        else contextlib.nullcontext()
    ):
        columns, engine = _training_set(store, entities, out, fmt, overwrite, request)
    summary = {"out": out, "format": fmt.value, "manifest": manifest_path, "columns": columns,
               "engine": engine}
    if json_output:
        print_json(summary)
    else:
        console.print(
            f"wrote training set to {out} ({fmt.value}, {len(columns)} columns); "
            f"manifest: {manifest_path}"
        )


def _training_set(
    store: Any, entities: str, out: str, fmt: Format, overwrite: bool, request: dict
) -> tuple[list[str], str]:
    """Write the training set, in process when the request is small; (columns, engine)."""
    from granero.offline.retrieval import write_training_set
    from granero.offline.training_files import local_path, small_parquet_entities, write_parquet_training_set

    rows = small_parquet_entities(entities) if fmt is Format.parquet and local_path(out) else None
    refs, service = request["features"], request["feature_service"]
    if rows is not None and store.training_engine(rows, refs, service) == "local":
        frame = store.get_historical_features_pandas(rows, **request, engine="local")
        write_parquet_training_set(frame, out, overwrite)
        return [str(c) for c in frame.columns], "local"
    frame = store.get_historical_features(entities, **request)
    write_training_set(frame, out, fmt.value, overwrite)
    return frame.columns, "spark"


def _view_names(store: Any, views: str | None) -> list[str]:
    from granero.offline.materialize import select_views

    names = [v.strip() for v in views.split(",") if v.strip()] if views else None
    return [view.name for view in select_views(store.registered(), names)]


def _run_per_view(
    store: Any, names: list[str], json_output: bool, run: Callable[[str], list]
) -> None:
    """Run one view at a time under a progress display, then print a summary."""
    rows = []
    with _progress(json_output) as progress:
        for name in names:
            task = progress.add_task(f"{name}: materializing", total=None) if progress else None
            started = time.monotonic()
            results = run(name)
            seconds = time.monotonic() - started
            rows += [_row(result, seconds) for result in results] or [_skipped(name)]
            if progress:
                progress.update(
                    task, description=f"{name}: {_done(rows[-1])}", total=1, completed=1
                )
    store.close()
    if json_output:
        print_json(rows)
    else:
        _print_summary(rows)


def _row(result: Any, seconds: float) -> dict:
    return {
        "view": result.view,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "rows": result.rows_written,
        "version": result.table_version,
        "seconds": round(seconds, 2),
        "capped_from": result.asked_end and result.asked_end.isoformat(),
        "online_rows": result.online_rows,
        "synced": [[w.start.isoformat(), w.end.isoformat()] for w in result.synced],
        "reason": result.reason,
    }


def _skipped(name: str) -> dict:
    return {"view": name, "start": None, "end": None, "rows": 0, "version": None, "seconds": 0.0,
            "capped_from": None, "online_rows": None, "synced": [], "reason": None}


def _done(row: dict) -> str:
    return "up to date" if row["start"] in (None, row["end"]) else f"{row['rows']} rows"


def _window(row: dict) -> str:
    """The window written, said to be capped when its end was; "up to date" when none was."""
    if row["start"] in (None, row["end"]):
        return "up to date"
    capped = f" (capped at now; asked {row['capped_from']})" if row["capped_from"] else ""
    why = f"\nwhy: {row['reason']}" if row.get("reason") else ""  # incremental runs say why
    return f"{row['start']} → {row['end']}{capped}{why}"


def _online(row: dict) -> str:
    """Rows synced, and the windows when they are more than the one written (a catch-up)."""
    if row["online_rows"] is None:
        return "-"
    windows = [w for w in row["synced"] if w != [row["start"], row["end"]]]
    extra = ", ".join(f"{a} → {b}" for a, b in windows)
    return f"{row['online_rows']} (caught up {extra})" if extra else str(row["online_rows"])


def _progress(json_output: bool) -> Any:
    if json_output:
        return contextlib.nullcontext()
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    )


def _print_summary(rows: list[dict]) -> None:
    table = Table(title="materialized")
    for column in ("view", "window", "rows", "version", "online", "seconds"):
        table.add_column(
            column, justify="right" if column in ("rows", "version", "seconds") else "left"
        )
    for row in rows:
        table.add_row(
            row["view"],
            _window(row),
            str(row["rows"]),
            str(row["version"] if row["version"] is not None else "-"),
            _online(row),
            f"{row['seconds']:.1f}",
        )
    console.print(table)
