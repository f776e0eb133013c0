"""``granero stream``: run the Structured Streaming query of each view with a stream source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from granero.cli.common import JsonOption, RepoOption, console, handles_errors, open_store, print_json
from granero.process_exit import exit_without_teardown
from granero.streaming.config import QueryKind

ViewsOption = Annotated[
    str | None,
    typer.Option("--views", help="Comma-separated feature views (default: every view with a stream_source)."),
]
AvailableNowOption = Annotated[
    bool,
    typer.Option("--available-now", help="Write what the sources hold now, then stop (a catch-up or a test)."),
]

QueriesOption = Annotated[
    QueryKind,
    typer.Option("--queries", help="all (default), or online / durable only: run those in processes of their own "
                 "(the online one never shares its CPU with a Delta commit); run both, or rows go missing."),
]


def register(app: typer.Typer) -> None:
    app.command()(stream)


@handles_errors
def stream(
    views: ViewsOption = None,
    available_now: AvailableNowOption = False,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
    queries: QueriesOption = QueryKind.ALL,
) -> None:
    """Stream each view's source into the online store and the offline table, until stopped
    (SIGTERM or Ctrl-C stop gracefully; a restart resumes from the checkpoints, exactly once)."""
    from granero.streaming.job import run_streams

    names = [v.strip() for v in views.split(",") if v.strip()] if views else None
    with open_store(repo) as store:
        if not json_output:
            console.print(f"streaming (checkpoints in {store.config.streaming.checkpoint_location})")
        totals = run_streams(store, names, available_now, queries)
    if json_output:
        print_json(totals)
    else:
        table = Table("view", "batches", "rows", "dead letters")
        for name, counts in totals.items():
            table.add_row(name, *(str(counts[k]) for k in ("batches", "rows", "dead_letters")))
        console.print(table)
    exit_without_teardown(0)  # the queries stopped and the store is closed (process_exit: why)
