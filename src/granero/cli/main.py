"""The ``granero`` command: one module per noun, registered here."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from granero.cli import (
    access_cmds,
    offline_cmds,
    online_cmds,
    push_cmds,
    registry_cmds,
    serving_cmds,
    status_cmds,
    stream_cmds,
)

app = typer.Typer(
    name="granero",
    help="Granero feature store: define, materialize, serve and retrieve features.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show Spark's and the JVM's own output (log4j, Ivy) on stderr.")] = False,
) -> None:
    """Granero feature store: define, materialize, serve and retrieve features."""
    if verbose:  # an environment variable, so Spark jobs started from here inherit it
        from granero.offline.spark_session import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"


for module in (
    registry_cmds, offline_cmds, online_cmds, serving_cmds, access_cmds, push_cmds, status_cmds, stream_cmds,
):
    module.register(app)


if __name__ == "__main__":
    app()
