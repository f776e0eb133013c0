"""``granero push VIEW --file rows.{json,jsonl,parquet,csv}``: push rows in process or to a server.

The file's values keep their types (JSON numbers, CSV columns as pyarrow infers them, Parquet as
stored) and are judged by the view's dtypes as any push is (``granero.push``): a value that would
change is refused naming the column and row, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from granero.cli.common import JsonOption, RepoOption, console, handles_errors, open_store, print_json
from granero.cli.serving_cmds import (
    ClientCertOption,
    ClientKeyOption,
    ServerNameOption,
    TargetOption,
    TlsCaOption,
    TlsFlag,
    TokenOption,
    requested_tls,
)
from granero.errors import InvalidRequest

FileOption = Annotated[Path, typer.Option(
    "--file", "-f", exists=True, dir_okay=False,
    help="Rows to push: .json (a list of objects), .jsonl, .parquet or .csv.")]
ToOption = Annotated[str, typer.Option(
    "--to", help="online_and_offline (default), online or offline.")]
BatchOption = Annotated[str | None, typer.Option(
    "--batch-id", help="Idempotency key: the same id again lands nothing twice (default: a hash "
                       "of the rows).")]


def register(app: typer.Typer) -> None:
    app.command()(push)


@handles_errors
def push(
    view: Annotated[str, typer.Argument(help="The feature view to push to.")],
    file: FileOption,
    to: ToOption = "online_and_offline",
    batch_id: BatchOption = None,
    target: TargetOption = None,
    tls: TlsFlag = False,
    tls_ca: TlsCaOption = None,
    tls_cert: ClientCertOption = None,
    tls_key: ClientKeyOption = None,
    tls_server_name: ServerNameOption = None,
    token: TokenOption = None,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
) -> None:
    """Write rows to a view: landed for the offline store, then online write-if-newer; with
    ``--target``, through a running server (TLS and token as ``granero get-online``'s)."""
    rows = read_rows(file)
    if target:
        from granero.serving.client import Client

        client_tls = requested_tls(tls, tls_ca, tls_cert, tls_key, tls_server_name)
        with Client(target, tls=client_tls, token=token, timeout=60) as client:
            result = client.push(view, rows, to=to, batch_id=batch_id)
    else:
        with open_store(repo) as store:
            result = store.push(view, rows, to=to, batch_id=batch_id)
    if json_output:
        print_json({"view": result.view, "rows": result.rows, "online_rows": result.online_rows,
                    "batch_id": result.batch_id, "landed": result.landed})
        return
    landed = "landed offline, " if result.landed else ""
    console.print(f"pushed {result.rows} rows to {result.view!r}: {landed}"
                  f"{result.online_rows} stored online (batch {result.batch_id})")


def read_rows(file: Path) -> Any:
    """The file's rows: a pyarrow Table (Parquet, CSV) or a list of row dicts (JSON)."""
    suffix = file.suffix.lower()
    readers = {".json": _json_rows, ".jsonl": _json_lines, ".parquet": _parquet, ".csv": _csv}
    if suffix not in readers:
        raise InvalidRequest(f"{file}: push reads .json, .jsonl, .parquet or .csv files, not {suffix!r}")
    try:
        return readers[suffix](file)
    except (ValueError, OSError) as error:  # JSON, Arrow (ArrowInvalid is a ValueError) and I/O
        raise InvalidRequest(f"{file}: cannot read rows: {error}") from None


def _json_rows(file: Path) -> list[Any]:
    rows = json.loads(file.read_text())
    if not isinstance(rows, list):
        raise ValueError("a .json file must hold a list of row objects")
    return rows


def _json_lines(file: Path) -> list[Any]:
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _parquet(file: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(file)


def _csv(file: Path) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.read_csv(file)
