"""Serving commands: ``serve`` runs the gRPC server; ``get-online`` looks features up, in-process
through the library or, with ``--target``, over gRPC from a running server.

Entity rows are given as ``--entity KEY=VALUE[,KEY=VALUE...]``, one option per row; values are
parsed by the join key's dtype from the registry (the local one, or the server's with --target).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from granero.cli.common import (
    JsonOption,
    RepoOption,
    console,
    handles_errors,
    open_store,
    print_json,
    shown_value,
)
from granero.errors import InvalidRequest


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


EntityOption = Annotated[list[str] | None, typer.Option(
    "--entity", "-e", help="One entity row as KEY=VALUE[,KEY=VALUE...]; repeat for more rows.")]
RequestOption = Annotated[list[str] | None, typer.Option(
    "--request", help="Request values of on-demand features as FIELD=VALUE[,...], one per "
    "--entity in order (or one for all); lists as JSON ([1, 2]), null for null.")]
FeaturesOption = Annotated[list[str] | None, typer.Option(
    "--features", "-f", help="view:feature or view:* references (repeatable, or comma-separated).")]
ServiceOption = Annotated[str | None, typer.Option(
    "--service", "-s", help="A feature service name.")]
TargetOption = Annotated[str | None, typer.Option(
    "--target", help="HOST:PORT of a running `granero serve`; default: look up in-process.")]
_TLS = "TLS"
TlsCaOption = Annotated[Path | None, typer.Option(
    "--tls-ca", envvar="GRANERO_TLS_CA", rich_help_panel=_TLS,
    help="CA bundle the server's certificate must chain to (implies TLS).")]
TlsFlag = Annotated[bool, typer.Option(
    "--tls", rich_help_panel=_TLS, help="Speak TLS, checking the server against the system's CAs.")]
ClientCertOption = Annotated[Path | None, typer.Option(
    "--tls-cert", envvar="GRANERO_TLS_CERT", rich_help_panel=_TLS,
    help="Client certificate for mutual TLS (with --tls-key).")]
ClientKeyOption = Annotated[Path | None, typer.Option(
    "--tls-key", envvar="GRANERO_TLS_KEY", rich_help_panel=_TLS,
    help="The client certificate's private key.")]
ServerNameOption = Annotated[str | None, typer.Option(
    "--tls-server-name", rich_help_panel=_TLS,
    help="Name the server's certificate must carry, when not the target's host.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="GRANERO_TOKEN", show_default=False,
    help="API token or JWT for a server with access control (sent as a bearer credential); "
         "prefer the GRANERO_TOKEN variable, which stays out of the shell's history.")]

_STATUS_STYLE = {"PRESENT": "green", "NULL_VALUE": "yellow", "OUTSIDE_MAX_AGE": "magenta",
                 "NOT_FOUND": "red"}


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command("get-online")(get_online)


@handles_errors
def serve(
    repo: RepoOption = Path("."),
    host: Annotated[str | None, typer.Option(
        help="Address to listen on (default: serving.host).")] = None,
    port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="gRPC port, 0 for any free one (default: serving.port).")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Prometheus /metrics port (default: serving.metrics_port).")] = None,
    max_workers: Annotated[int | None, typer.Option(
        min=1, help="Request threads per process (default: serving.max_workers).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Serving processes sharing the port (default: serving.workers).")] = None,
    log_level: Annotated[LogLevel, typer.Option(
        case_sensitive=False, help="DEBUG logs one JSON line per request.")] = LogLevel.INFO,
    tls_cert: Annotated[Path | None, typer.Option(
        rich_help_panel=_TLS, help="Server certificate chain, PEM (default: serving.tls).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        rich_help_panel=_TLS, help="Its private key, PEM; both files are re-read on rotation.")] = None,
    tls_client_ca: Annotated[Path | None, typer.Option(
        rich_help_panel=_TLS, help="Require client certificates signed by this CA (mTLS).")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", rich_help_panel=_TLS,
        help="Allow plain text on a non-loopback --host (default: refused, exit 2).")] = False,
    health_port: Annotated[int | None, typer.Option(
        min=0, max=65535, rich_help_panel=_TLS,
        help="Plain-text port serving only grpc.health.v1, for probes without TLS.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Serve online features over gRPC until SIGTERM or Ctrl-C, then drain in-flight requests."""
    from granero.serving.logs import configure_json_logging
    from granero.serving.server import serve as run_server
    from granero.serving.tls import require_safe_transport
    from granero.serving.workers import handle_info, serve_workers

    configure_json_logging(log_level.value)
    overrides = {"host": host, "port": port, "metrics_port": metrics_port,
                 "max_workers": max_workers, "workers": workers, "health_port": health_port,
                 "insecure": insecure or None}
    with open_store(repo) as store:
        update = {k: v for k, v in overrides.items() if v is not None}
        config = _with_tls(store.config.serving.model_copy(update=update),
                           tls_cert, tls_key, tls_client_ca)
        require_safe_transport(config, warn=False)  # before any worker starts: one clear error
        if config.workers == 1:
            run_server(store, config,
                       on_ready=lambda handle: _announce(handle_info(handle), json_output))
    if config.workers > 1:  # the parent only supervises: it opens no online store of its own
        serve_workers(repo, config, log_level=log_level.value,
                      on_ready=lambda info: _announce(info, json_output))
    if not json_output:
        console.print("stopped: in-flight requests drained")


def _with_tls(config: Any, cert: Path | None, key: Path | None, client_ca: Path | None) -> Any:
    """``--tls-*`` over ``serving.tls``: a flag replaces that one file of the config's."""
    if cert is None and key is None and client_ca is None:
        return config
    files = config.tls.model_dump() if config.tls else {}
    given = {"cert_file": cert, "key_file": key, "client_ca_file": client_ca}
    files |= {field: str(path.resolve()) for field, path in given.items() if path is not None}
    if not files.get("cert_file") or not files.get("key_file"):
        raise typer.BadParameter("TLS needs a certificate and its key: --tls-cert and --tls-key "
                                 "(or serving.tls.cert_file and key_file)")
    from granero.serving.config import TlsConfig

    return config.model_copy(update={"tls": TlsConfig(**files)})


def _announce(info: dict[str, Any], json_output: bool) -> None:
    if json_output:  # one line, so a supervising script can read it from the stream
        typer.echo(json.dumps(info))
        return
    metrics = ""
    if info["metrics_port"]:
        host = info["address"].rsplit(":", 1)[0]
        metrics = f"; metrics on http://{host}:{info['metrics_port']}/metrics"
    workers = f" in {len(info['pids'])} worker processes" if "pids" in info else ""
    console.print(f"serving project {info['project']} (registry v{info['registry_version']}) on "
                  f"{info['address']}{workers}{metrics}; SIGTERM or Ctrl-C stops",
                  highlight=False, soft_wrap=True)


@handles_errors
def get_online(
    entity: EntityOption = None,
    features: FeaturesOption = None,
    service: ServiceOption = None,
    target: TargetOption = None,
    repo: RepoOption = Path("."),
    json_output: JsonOption = False,
    tls: TlsFlag = False,
    tls_ca: TlsCaOption = None,
    tls_cert: ClientCertOption = None,
    tls_key: ClientKeyOption = None,
    tls_server_name: ServerNameOption = None,
    token: TokenOption = None,
    request: RequestOption = None,
) -> None:
    """Look up the latest feature values of entities; a status says why a value is missing."""
    refs = [r.strip() for item in features or [] for r in item.split(",") if r.strip()] or None
    if (refs is None) == (service is None):
        raise typer.BadParameter("give --features or --service (exactly one of them)")
    entity, request = entity or [], request or []
    if target:
        client_tls = requested_tls(tls, tls_ca, tls_cert, tls_key, tls_server_name)
        rows, result, dtypes = _remote_lookup(target, entity, refs, service, client_tls, token,
                                              request)
    else:
        rows, result, dtypes = _local_lookup(repo, entity, refs, service, request)
    if json_output:
        print_json(_result_json(rows, result, dtypes))
    else:
        _print_result(rows, result, dtypes)


def _local_lookup(repo: Path, entities: list[str], refs: list[str] | None, service: str | None,
                  requests: list[str]):
    from granero.cli.request_args import local_shape

    with open_store(repo) as store:
        keys, fields, dtypes = local_shape(store, refs, service)
        rows, values = _rows_and_requests(entities, keys, requests, fields)
        return rows, store.get_online_features(rows, features=refs, feature_service=service,
                                               request_data=values), dtypes


def _rows_and_requests(entities: list[str], keys: dict[str, str], requests: list[str],
                       fields: dict[str, str]) -> tuple[list[dict[str, Any]], Any]:
    """Typed entity rows (an empty one per ``--request`` when none are given) and request
    values (None when none are given)."""
    from granero.cli.request_args import parse_requests

    rows = parse_entities(entities, keys) if entities else [{} for _ in requests]
    return rows, parse_requests(requests, fields, len(rows)) if requests else None


def requested_tls(tls: bool, ca: Path | None, cert: Path | None, key: Path | None,
                server_name: str | None):
    """TLS when any ``--tls*`` option is given; plain text otherwise."""
    if not (tls or ca or cert or key or server_name):
        return None
    from granero.serving.tls import ClientTls

    return ClientTls(ca_file=str(ca) if ca else None, cert_file=str(cert) if cert else None,
                     key_file=str(key) if key else None, server_name=server_name)


def _remote_lookup(target: str, entities: list[str], refs: list[str] | None, service: str | None,
                   tls: Any = None, token: str | None = None, requests: list[str] | None = None):
    from granero.cli.request_args import remote_shape
    from granero.serving.client import Client

    with Client(target, tls=tls, token=token) as client:
        keys, fields, dtypes = remote_shape(client.request_views(features=refs,
                                                                 feature_service=service))
        rows, values = _rows_and_requests(entities, keys, requests or [], fields)
        return rows, client.get_online_features(rows, features=refs, feature_service=service,
                                                request_data=values), dtypes


# -- parsing --entity -----------------------------------------------------------------------------


def parse_entities(texts: list[str], dtypes: dict[str, str]) -> list[dict[str, Any]]:
    """A typed row per ``KEY=VALUE[,KEY=VALUE...]`` text; keys must be join keys of the request."""
    return [_parse_entity(text, dtypes) for text in texts]


def _parse_entity(text: str, dtypes: dict[str, str]) -> dict[str, Any]:
    from granero.cli.request_args import parse_assignments

    unknown = f"is not a join key of the requested features; they need {list(dtypes)}"
    return parse_assignments("--entity", "KEY", text, text.split(","), dtypes, unknown,
                             parse_key_value)


def parse_key_value(key: str, raw: str, dtype: str) -> Any:
    """A join key value from text, by dtype (timestamps in ISO 8601; naive means UTC)."""
    try:
        return _PARSERS[dtype](raw)
    except (KeyError, ValueError):
        raise InvalidRequest(f"--entity {key}={raw!r}: not a valid {dtype}") from None


def _parse_bool(raw: str) -> bool:
    return {"true": True, "1": True, "false": False, "0": False}[raw.lower()]


def _parse_timestamp(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int32": int, "int64": int, "string": str, "bytes": str.encode, "bool": _parse_bool,
    "timestamp": _parse_timestamp,
}


# -- output ---------------------------------------------------------------------------------------


def _result_json(rows: list[dict[str, Any]], result: Any, dtypes: dict[str, str]) -> dict:
    return {
        "feature_names": result.feature_names,
        "rows": [{"entity": {k: _jsonable(v) for k, v in row.items()},
                  "features": {name: {"value": _jsonable(shown_value(v.value, dtypes.get(name, ""))),
                                      "status": v.status.value,
                                      "event_timestamp": _jsonable(v.event_timestamp)}
                               for name, v in zip(result.feature_names, values, strict=True)}}
                 for row, values in zip(rows, result.rows, strict=True)],
    }


def _jsonable(value: Any) -> Any:
    """JSON-safe form: bytes as base64, timestamps in ISO 8601."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _print_result(rows: list[dict[str, Any]], result: Any, dtypes: dict[str, str]) -> None:
    """One table per entity row, titled by its keys."""
    for row, values in zip(rows, result.rows, strict=True):
        table = Table(title=", ".join(f"{k}={v!r}" for k, v in row.items()), title_justify="left")
        table.add_column("feature", overflow="fold")
        table.add_column("value", overflow="fold")
        table.add_column("status")
        table.add_column("event time (UTC)", no_wrap=True)
        for name, value in zip(result.feature_names, values, strict=True):
            status = value.status.value
            stamp = value.event_timestamp
            event_time = stamp.strftime("%Y-%m-%d %H:%M:%S") if stamp else ""
            shown = shown_value(value.value, dtypes.get(name, ""))
            table.add_row(name, "" if shown is None else repr(shown),
                          f"[{_STATUS_STYLE[status]}]{status}[/]", event_time)
        console.print(table)
