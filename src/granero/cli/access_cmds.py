"""Access commands: ``granero token new`` makes an API token for a server's tokens file."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from granero.cli.common import JsonOption, console, handles_errors, print_json

token_app = typer.Typer(help="API tokens for a server with access control (access.authentication).")

RoleOption = Annotated[list[str] | None, typer.Option(
    "--role", "-r", help="A role the token's principal holds (repeatable).")]


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


@token_app.command("new")
@handles_errors
def new(name: Annotated[str, typer.Argument(help="The principal's name (permissions name it).")],
        role: RoleOption = None, json_output: JsonOption = False) -> None:
    """Make a token: it is printed once, and only its SHA-256 goes in the tokens file."""
    from granero.access.tokens import TokenEntry, new_token, token_digest

    token = new_token()
    entry = TokenEntry(name=name, sha256=token_digest(token), roles=role or []).model_dump()
    if json_output:
        print_json({"token": token, "entry": entry})
        return
    console.print(f"token for {name} (shown once; hand it over, do not store it):\n{token}\n",
                  highlight=False, soft_wrap=True)
    console.print("add to the tokens file (tokens: list), e.g. the Secret in server.access.tokens:",
                  highlight=False)
    console.print(yaml.safe_dump([entry], sort_keys=False), highlight=False, soft_wrap=True)
