"""What transport security and access control cost per request: server CPU next to plain text.

    .venv/bin/python -m bench.access [--requests 4000] [--entities 1,100] [--rounds 10]

Sets up a private redis-server and a repo with one view of 20 features (bench/grpc_latency.py's),
then starts one server process per row of ``ROWS`` (plain text, TLS, mutual TLS, and what the
access layer adds), each with its own feature_store.yaml. For every entity count, one client
sends ``--requests`` sequential GetOnlineFeatures per row on one warmed-up connection per row,
in ``--rounds`` rounds that take the rows in rotating order, and the server process's CPU time
(user + system, from /proc) is divided by the requests. Load from elsewhere on the machine thus
lands on every row alike, and each round gives a paired ratio to the first row (plain text):
the table shows their median and range. A second figure is the server CPU of a new connection
(handshake and first request), from ``CONNECTIONS`` fresh channels.

A row is a ``Row(name, setup)``: ``setup(folder)`` writes what it needs (certificates, token
files) into ``folder`` and returns the feature_store.yaml sections to merge and the client side
(TLS settings, call metadata). Add a row by appending to ``ROWS``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.grpc_latency import ENTITIES, REFS, make_repo, start_redis, write_rows

CONNECTIONS = 50
WARMUP = 200


@dataclass
class ClientSide:
    tls: Any = None
    """granero.serving.tls.ClientTls, or None for plain text."""
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class Row:
    name: str
    setup: Callable[[Path], tuple[dict[str, Any], ClientSide]]
    results: dict[int, list[dict[str, float]]] = field(default_factory=dict)


def plain(folder: Path) -> tuple[dict[str, Any], ClientSide]:
    return {}, ClientSide()


def tls(folder: Path, *, mutual: bool = False) -> tuple[dict[str, Any], ClientSide]:
    """A server certificate (EC P-256) from a CA made here; with ``mutual``, a client one too."""
    from tests.serving.certs import Authority

    from granero.serving.tls import ClientTls

    servers, clients = Authority("bench servers"), Authority("bench clients")
    cert, key = servers.server().write(folder, "server")
    files: dict[str, str] = {"cert_file": str(cert), "key_file": str(key)}
    client = ClientTls(ca_file=str(servers.write(folder, "servers")), server_name="localhost")
    if mutual:
        files["client_ca_file"] = str(clients.write(folder, "clients"))
        client_cert, client_key = clients.client("bench").write(folder, "client")
        client = client.model_copy(update={"cert_file": str(client_cert),
                                           "key_file": str(client_key)})
    return {"serving": {"tls": files}}, ClientSide(tls=client)


def authorized(folder: Path, *, bearer: str = "token", audit: bool = False,
               transport: Callable[[Path], tuple[dict[str, Any], ClientSide]] = plain,
               ) -> tuple[dict[str, Any], ClientSide]:
    """The access layer on: a bearer ``token`` (hashed tokens file) or ``jwt`` (JWKS file), a
    registry of the row's own whose one Permission grants the caller's role the view (so the
    interceptor authenticates, evaluates the permission and narrows nothing), the audit log
    when ``audit``; over ``transport``."""
    sections, client = transport(folder)
    access: dict[str, Any] = {"authentication": [_authentication(folder, bearer, client)]}
    if audit:
        access["audit_log"] = str(folder / "audit.jsonl")
    sections |= {"access": access, "registry": {"path": _registry_with_permission(folder)}}
    return sections, client


def _authentication(folder: Path, bearer: str, client: ClientSide) -> dict[str, Any]:
    from granero.access.tokens import new_token, token_digest

    if bearer == "jwt":
        from tests.access.conftest import AUDIENCE, ISSUER, Issuer

        issuer = Issuer()
        (folder / "jwks.json").write_text(json.dumps({"keys": [issuer.jwk()]}))
        client.metadata = (("authorization", f"Bearer {issuer.token('bench', roles=['bench'], expires_in=3600)}"),)
        return {"type": "jwt", "keys_file": str(folder / "jwks.json"), "audience": AUDIENCE,
                "issuer": ISSUER}
    token = new_token()
    entry = {"name": "bench", "sha256": token_digest(token), "roles": ["bench"]}
    (folder / "tokens.yaml").write_text(yaml.safe_dump({"tokens": [entry]}))
    client.metadata = (("authorization", f"Bearer {token}"),)
    return {"type": "tokens", "file": str(folder / "tokens.yaml")}


def _registry_with_permission(folder: Path) -> str:
    """A copy of the bench repo's registry (``measure`` puts the repo beside the row folders)
    whose current version adds the permission."""
    import shutil

    from granero.definitions import Permission
    from granero.registry import FileRegistry

    registry = folder / "registry"
    shutil.copytree(folder.parent / "repo" / "data" / "registry", registry)
    current = FileRegistry(registry).current()
    grant = Permission(name="bench", roles=["bench"], actions=["read_online"], feature_views=["stats"])
    definitions = current.definitions.model_copy(update={"permissions": {"bench": grant}})
    FileRegistry(registry).write_version(current.project, definitions)
    return str(registry)


ROWS: list[Row] = [
    Row("plain text", plain),
    Row("TLS", tls),
    Row("mutual TLS", lambda folder: tls(folder, mutual=True)),
    Row("token auth + permission", authorized),
    Row("JWT auth + permission", lambda folder: authorized(folder, bearer="jwt")),
    Row("token auth + permission + audit log", lambda folder: authorized(folder, audit=True)),
    Row("TLS + token auth + permission", lambda folder: authorized(folder, transport=tls)),
]
"""Measured in this order within each run; the first is the baseline of the ratios."""


# -- the server side ------------------------------------------------------------------------------


def start_server(repo: Path, sections: dict[str, Any]) -> tuple[subprocess.Popen, int]:
    """``granero serve`` on a free port with ``sections`` merged into the repo's config."""
    config_file = repo / "feature_store.yaml"
    config = yaml.safe_load(config_file.read_text())
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    row_repo = repo.parent / f"{repo.name}-{os.urandom(4).hex()}"
    row_repo.mkdir()
    for item in repo.iterdir():
        if item.name != "feature_store.yaml":
            (row_repo / item.name).symlink_to(item.resolve())
    (row_repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
    granero = str(Path(sys.executable).parent / "granero")
    process = subprocess.Popen([granero, "serve", "-r", str(row_repo), "--port", "0", "--json",
                                "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())["port"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the client side ------------------------------------------------------------------------------


def open_channel(port: int, client: ClientSide):
    import grpc

    from granero.serving.tls import channel_credentials, channel_options

    address = f"localhost:{port}"
    if client.tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, channel_credentials(client.tls),
                               channel_options(client.tls))


def lookup(stub: Any, client: ClientSide, entities: int, rng: random.Random) -> None:
    from granero.serving.v1 import serving_pb2 as pb
    from granero.serving.v1 import value_pb2

    ids = value_pb2.Int64List(val=[rng.randint(1, ENTITIES) for _ in range(entities)])
    reply = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(
        features=pb.FeatureList(refs=REFS), layout=pb.COLUMNS,
        entity_columns={"driver_id": value_pb2.Value(int64_list_val=ids)}),
        timeout=30, metadata=client.metadata or None)
    if len(reply.columns) != len(REFS):
        raise SystemExit(f"unexpected reply: {reply}")


@dataclass
class Served:
    """One row's running server and a warmed-up connection to it."""

    row: Row
    client: ClientSide
    process: subprocess.Popen
    port: int
    channel: Any = None
    stub: Any = None

    def connect(self) -> None:
        from granero.serving.v1.serving_pb2_grpc import FeatureServingStub

        self.channel = open_channel(self.port, self.client)
        self.stub = FeatureServingStub(self.channel)

    def chunk(self, entities: int, requests: int, rng: random.Random) -> tuple[float, list[float]]:
        """Server CPU seconds and client latencies (s) of ``requests`` sequential lookups."""
        latencies, before = [], cpu_seconds(self.process.pid)
        for _ in range(requests):
            sent = time.perf_counter()
            lookup(self.stub, self.client, entities, rng)
            latencies.append(time.perf_counter() - sent)
        return cpu_seconds(self.process.pid) - before, latencies


def per_connection(served: Served) -> float:
    """Server CPU (µs) of a new connection: its handshake and one 1-entity request."""
    from granero.serving.v1.serving_pb2_grpc import FeatureServingStub

    rng, before = random.Random(0), cpu_seconds(served.process.pid)
    for _ in range(CONNECTIONS):
        with open_channel(served.port, served.client) as channel:
            lookup(FeatureServingStub(channel), served.client, 1, rng)
    return (cpu_seconds(served.process.pid) - before) / CONNECTIONS * 1e6


# -- the run --------------------------------------------------------------------------------------


def measure(rows: list[Row], repo: Path, options: argparse.Namespace) -> None:
    """Rounds of ``requests / rounds`` lookups per row, the rows' order rotating each round, so
    a change of load on the machine lands on every row alike; each round gives one paired
    ratio to the first row."""
    servers: list[Served] = []
    try:
        for index, row in enumerate(rows):
            folder = repo.parent / f"row{index}"
            folder.mkdir()
            sections, client = row.setup(folder)
            servers.append(Served(row, client, *start_server(repo, sections)))
        for served in servers:
            served.connect()
            for _ in range(WARMUP):
                lookup(served.stub, served.client, 1, random.Random(1))
        for entities in options.entities:
            measure_entities(servers, entities, options)
        for served in servers:
            served.row.results[0] = [{"cpu_us": per_connection(served)}]
    finally:
        for served in servers:
            if served.channel is not None:
                served.channel.close()
            served.process.terminate()
            served.process.wait(30)


def measure_entities(servers: list[Served], entities: int, options: argparse.Namespace) -> None:
    chunk = max(1, options.requests // options.rounds)
    rng = random.Random(entities)
    for round_ in range(options.rounds):
        order = servers[round_ % len(servers):] + servers[:round_ % len(servers)]
        for served in order:
            cpu, latencies = served.chunk(entities, chunk, rng)
            served.row.results.setdefault(entities, []).append(
                {"cpu_us": cpu / chunk * 1e6, "p50_ms": statistics.median(latencies) * 1e3})


def median(cells: list[dict[str, float]], key: str) -> float:
    return statistics.median(cell[key] for cell in cells)


def table(rows: list[Row], entities: list[int]) -> str:
    """CPU per request as the median over rounds; the ratio as the median (and range) of the
    rounds' paired ratios to the first row."""
    base = rows[0]
    lines = ["| row | entities | server CPU µs/request | vs plain text, median (range) of rounds "
             "| client p50 ms |", "|---|---:|---:|---:|---:|"]
    for count in entities:
        for row in rows:
            ratios = sorted(cell["cpu_us"] / paired["cpu_us"] - 1
                            for cell, paired in zip(row.results[count], base.results[count],
                                                    strict=True))
            lines.append(f"| {row.name} | {count} | {median(row.results[count], 'cpu_us'):,.0f} | "
                         f"{statistics.median(ratios):+.1%} ({ratios[0]:+.0%} to "
                         f"{ratios[-1]:+.0%}) | {median(row.results[count], 'p50_ms'):.2f} |")
    lines += ["", "| row | server CPU µs per new connection (handshake + 1-entity request) |",
              "|---|---:|"]
    lines += [f"| {row.name} | {median(row.results[0], 'cpu_us'):,.0f} |" for row in rows]
    return "\n".join(lines)


class _CallContext:
    """What the interceptor reads of a call: its metadata and (no) client certificate."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def auth_context(self) -> dict:
        return {}

    def abort(self, code: Any, details: str) -> None:
        raise SystemExit(f"refused: {code} {details}")


def access_layer_table(repo: Path, entities: list[int], calls: int) -> str:
    """The interceptor's own CPU per call, in process and without the network or the lookup:
    authenticate, authorize the selection, the audit record (and line), around a no-op
    handler. Exact where the server rows' ratios are noisy on a loaded machine."""
    lines = ["| access layer, in process | entities | CPU µs per call |", "|---|---:|---:|"]
    for index, (name, bearer, audit) in enumerate([("token + permission", "token", False),
                                                   ("JWT + permission", "jwt", False),
                                                   ("token + permission + audit log", "token", True)]):
        folder = repo.parent / f"layer{index}"
        folder.mkdir()
        sections, client = authorized(folder, bearer=bearer, audit=audit)
        for count in entities:
            lines.append(f"| {name} | {count} | {_layer_cost(sections, client, count, calls):.1f} |")
    return "\n".join(lines)


def _layer_cost(sections: dict[str, Any], client: ClientSide, entities: int, calls: int) -> float:
    from granero.access.config import AccessConfig
    from granero.access.guard import AccessGuard
    from granero.access.interceptor import AccessInterceptor
    from granero.registry import FileRegistry
    from granero.serving.snapshot import RegistryFollower
    from granero.serving.v1 import serving_pb2 as pb
    from granero.serving.v1 import value_pb2

    registry = RegistryFollower(FileRegistry(sections["registry"]["path"]), 5.0)  # as served
    guard = AccessGuard(AccessConfig.model_validate(sections["access"]), registry.current)
    behaviour = AccessInterceptor(guard, 1000)._guarded("GetOnlineFeatures", lambda request, context: None)
    ids = value_pb2.Int64List(val=list(range(1, entities + 1)))
    request = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=REFS), layout=pb.COLUMNS,
                                          entity_columns={"driver_id": value_pb2.Value(int64_list_val=ids)})
    context = _CallContext(client.metadata)
    for _ in range(200):
        behaviour(request, context)
    started = time.process_time()
    for _ in range(calls):
        behaviour(request, context)
    cost = (time.process_time() - started) / calls * 1e6
    guard.close()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per row and entity count")
    parser.add_argument("--entities", default="1,100")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", help="also write every cell's raw numbers to this file")
    parser.add_argument("--layer-calls", type=int, default=20000,
                        help="calls per cell of the in-process access-layer table")
    options = parser.parse_args()
    options.entities = [int(n) for n in options.entities.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        redis, url = start_redis(Path(folder))
        try:
            repo = make_repo(Path(folder) / "repo", url)
            write_rows(repo)
            layer = access_layer_table(repo, options.entities, options.layer_calls)
            measure(ROWS, repo, options)
        finally:
            redis.terminate()
            redis.wait(10)
    print(table(ROWS, options.entities))
    print()
    print(layer)
    if options.json:
        Path(options.json).write_text(json.dumps({r.name: r.results for r in ROWS}, indent=1))


if __name__ == "__main__":
    main()
