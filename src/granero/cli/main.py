"""The ``granero`` command: one module per noun, registered here."""

from __future__ import annotations

import typer

from granero.cli import offline_cmds, online_cmds, registry_cmds, serving_cmds

app = typer.Typer(
    name="granero",
    help="Granero feature store: define, materialize, serve and retrieve features.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (registry_cmds, offline_cmds, online_cmds, serving_cmds):
    module.register(app)


if __name__ == "__main__":
    app()
