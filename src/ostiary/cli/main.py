"""The ``ostiary`` command: serve, gateway, check-config, users, clients, keys (typer + rich).

This module only assembles the app; each command group lives in its own module (``serve``,
``gateway``, ``check_config``, ``users``, ``clients``, ``keys``; the MCP client commands in
:mod:`ostiary.client.cli`), with what they share in ``_common``.
"""

from __future__ import annotations

import typer

from ostiary.cli import gateway as gateway_command
from ostiary.cli.check_config import check_config
from ostiary.cli.clients import clients_app
from ostiary.cli.keys import keys_app
from ostiary.cli.serve import serve
from ostiary.cli.users import users_app
from ostiary.client.cli import client_app

app = typer.Typer(no_args_is_help=True, help="OAuth 2.1 for MCP servers.")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
# The MCP client commands (login, logout, whoami, tools, call) sit at the top level.
app.add_typer(client_app)
app.command()(serve)
app.command(**gateway_command.COMMAND_SETTINGS)(gateway_command.gateway)
app.command("check-config")(check_config)


def main() -> None:
    app()
