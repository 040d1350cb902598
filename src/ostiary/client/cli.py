"""``ostiary login/logout/whoami/tools/call``: the MCP OAuth client as a CLI (MCP authorization).

A typer app, :data:`client_app`, that the main ``ostiary`` CLI mounts. Servers are named
by URL or by their ``name`` in ``mcp_config.json``. Tokens go to the OS keyring when one is
available, else to one ``0600`` JSON file per issuer (``--token-dir`` forces files), so a
later command reuses them. Every failure prints one ``error:`` line and exits 1; no
traceback reaches the user.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import httpx
import httpx2
import typer
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from rich.console import Console
from rich.table import Table

from ostiary.client.auth import OAuthClientAuth
from ostiary.client.authorization import AuthorizationCallback, CallbackResult
from ostiary.client.callback import DEFAULT_TIMEOUT_SECONDS, LoopbackCallback, PasteCallback
from ostiary.client.config import ServerEntry, load_servers_file
from ostiary.client.discovery import canonical_resource
from ostiary.client.keyring_store import default_token_store
from ostiary.client.registration import ClientConfig
from ostiary.client.revocation import revoke_grant
from ostiary.client.session import open_mcp_client
from ostiary.client.token_store import StoredGrant
from ostiary.errors import ClientError

__all__ = ["client_app", "parse_arguments"]

client_app = typer.Typer(no_args_is_help=True, help="Use OAuth-protected MCP servers.")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Servers file (default: ./mcp_config.json).",
        envvar="OSTIARY_MCP_CONFIG",
    ),
]
TokenDirOption = Annotated[
    Path | None,
    typer.Option(
        "--token-dir",
        help="Keep tokens in 0600 files here (default: the OS keyring, else ~/.config/ostiary).",
        envvar="OSTIARY_TOKEN_DIR",
    ),
]
NoBrowserOption = Annotated[
    bool, typer.Option("--no-browser", help="Print the URL and paste the redirect back.")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the login to complete.")
]


class CliError(ClientError):
    """A usage problem reported as one line."""


@dataclass(frozen=True)
class Target:
    """The server a command talks to: an HTTP URL, or a stdio command (no OAuth)."""

    url: str
    entry: ServerEntry | None
    command: tuple[str, ...] = ()


def _resolve(server: str, config: Path | None) -> Target:
    if server.startswith(("http://", "https://")):
        return Target(server, None)
    path = config or Path("mcp_config.json")
    entry = load_servers_file(path).find(server)
    if entry is None:
        raise CliError(f"no server named {server!r} in {path}")
    if entry.transport == "stdio" and entry.command:
        return Target("", entry, tuple(entry.command))
    assert entry.url is not None  # ServerEntry validation guarantees it for HTTP
    return Target(entry.url, entry)


def _error_text(exc: BaseException) -> str | None:
    """One line for an expected failure, or None for a bug."""
    if isinstance(exc, ClientError):
        return str(exc)
    if isinstance(exc, httpx.ConnectError | httpx2.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.HTTPError | httpx2.HTTPError):
        return f"HTTP failure: {exc}"
    if isinstance(exc, MCPError):
        return f"server error: {exc.error.message}"
    if isinstance(exc, OSError):
        return str(exc)
    return None


def _first_known(exc: BaseException) -> str | None:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (text := _first_known(inner)) is not None:
                return text
        return None
    text = _error_text(exc)
    if text is None and exc.__cause__ is not None:
        return _first_known(exc.__cause__)
    return text


def _run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return anyio.run(work)
    except typer.Exit:
        raise
    except Exception as exc:
        text = _first_known(exc)
        if text is None:
            text = f"unexpected {type(exc).__name__}: {exc}"
        err.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _client_config(target: Target, redirect_uri: str) -> ClientConfig:
    if target.entry is not None:
        return target.entry.client_config(redirect_uri)
    return ClientConfig(client_name="ostiary", redirect_uris=(redirect_uri,))


def _with_progress(callback: AuthorizationCallback) -> AuthorizationCallback:
    async def run(url: str) -> CallbackResult:
        err.print(f"Opening the browser to log in. If it does not open, visit:\n  {url}")
        with err.status("Waiting for you to approve access in the browser…"):
            return await callback(url)

    return run


@asynccontextmanager
async def _session(
    target: Target, token_dir: Path | None, no_browser: bool, timeout: float
) -> AsyncIterator[tuple[Client, OAuthClientAuth]]:
    store = default_token_store(token_dir)
    configured = target.entry.auth.redirect_uri if target.entry and target.entry.auth else None
    paste = no_browser or (configured is not None and configured.startswith("urn:"))
    if paste:
        callback: AuthorizationCallback = PasteCallback(
            timeout_seconds=timeout, write=lambda text: err.print(text, highlight=False)
        )
        auth = OAuthClientAuth(
            _client_config(target, configured or "http://127.0.0.1/callback"),
            callback=callback,
            store=store,
            server_url=target.url,
        )
        async with open_mcp_client(target.url, auth) as client:
            yield client, auth
        return
    port = _configured_port(configured)
    async with LoopbackCallback(port=port, timeout_seconds=timeout) as loopback:
        auth = OAuthClientAuth(
            _client_config(target, loopback.redirect_uri),
            callback=_with_progress(loopback),
            store=store,
            server_url=target.url,
        )
        async with open_mcp_client(target.url, auth) as client:
            yield client, auth


@asynccontextmanager
async def _connect(
    target: Target, token_dir: Path | None, no_browser: bool, timeout: float
) -> AsyncIterator[Client]:
    """An MCP client session: stdio servers directly, HTTP servers with OAuth."""
    if target.command:
        # MCP authorization: STDIO servers take credentials from their environment.
        params = StdioServerParameters(command=target.command[0], args=list(target.command[1:]))
        async with Client(params, raise_exceptions=True) as client:
            yield client
        return
    async with _session(target, token_dir, no_browser, timeout) as (client, _):
        yield client


def _configured_port(redirect_uri: str | None) -> int:
    if not redirect_uri:
        return 0
    port = httpx.URL(redirect_uri).port
    return port or 0


@client_app.command()
def login(
    server: Annotated[str, typer.Argument(help="MCP server URL or name in the servers file.")],
    config: ConfigOption = None,
    token_dir: TokenDirOption = None,
    no_browser: NoBrowserOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """Log in to an MCP server (discovery, registration, browser login) and keep the tokens."""

    async def work() -> None:
        target = _resolve(server, config)
        if target.command:
            raise CliError(
                f"server {server!r} uses stdio: it takes credentials from its environment, "
                "there is nothing to log in to"
            )
        async with _session(target, token_dir, no_browser, timeout) as (client, auth):
            await client.list_tools()
            context = auth.flow.context
            tokens = auth.flow.tokens
        if context is None or tokens is None:
            console.print(f"{target.url} did not ask for authorization; nothing to store.")
            return
        scope = tokens.scope or "(none)"
        console.print(f"Logged in to {context.resource} via {context.issuer} (scope: {scope})")

    _run(work)


@client_app.command()
def logout(
    server: Annotated[
        str | None, typer.Argument(help="MCP server URL or name; all servers when omitted.")
    ] = None,
    config: ConfigOption = None,
    token_dir: TokenDirOption = None,
) -> None:
    """Revoke (RFC 7009) and forget stored tokens for one server or all of them."""

    async def work() -> None:
        store = default_token_store(token_dir)
        resource = canonical_resource(_resolve(server, config).url) if server else None
        grants = [g for g in await store.list_grants() if resource in (None, g.resource)]
        if not grants:
            raise CliError(f"not logged in to {server}" if server else "not logged in anywhere")
        async with httpx.AsyncClient(timeout=10) as http:
            for grant in grants:
                status = await _revoke(grant, http)
                await store.delete_tokens(grant.issuer, grant.resource)
                await store.delete_registration(grant.issuer, grant.resource)
                console.print(f"Logged out of {grant.resource} ({status}).")

    _run(work)


async def _revoke(grant: StoredGrant, http: httpx.AsyncClient) -> str:
    try:
        return await revoke_grant(grant, http)
    except (ClientError, httpx.HTTPError) as exc:
        return f"not revoked: {_error_text(exc)}"


def _expires(expires_at: float | None) -> str:
    if expires_at is None:
        return "-"
    moment = datetime.fromtimestamp(expires_at, UTC)
    left = int(expires_at - datetime.now(UTC).timestamp())
    state = f"in {left // 60} min" if left > 0 else "expired"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({state})"


@client_app.command()
def whoami(token_dir: TokenDirOption = None) -> None:
    """List the servers you are logged in to, with scopes and expiry."""

    async def work() -> None:
        grants = await default_token_store(token_dir).list_grants()
        grants = [g for g in grants if g.tokens is not None]
        if not grants:
            console.print("Not logged in to any server.")
            return
        table = Table("Resource", "Issuer", "Scope", "Expires", "Refresh")
        for grant in grants:
            assert grant.tokens is not None
            table.add_row(
                grant.resource,
                grant.issuer,
                grant.tokens.scope or "-",
                _expires(grant.tokens.expires_at),
                "yes" if grant.tokens.refresh_token else "no",
            )
        console.print(table)

    _run(work)


@client_app.command()
def tools(
    server: Annotated[str, typer.Argument(help="MCP server URL or name in the servers file.")],
    config: ConfigOption = None,
    token_dir: TokenDirOption = None,
    no_browser: NoBrowserOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """List a server's tools as a table (logs in first when needed)."""

    async def work() -> None:
        target = _resolve(server, config)
        async with _connect(target, token_dir, no_browser, timeout) as client:
            listed = await client.list_tools()
        table = Table("Tool", "Description")
        for tool in listed.tools:
            lines = (tool.description or "").strip().splitlines()
            table.add_row(tool.name, lines[0] if lines else "")
        console.print(table)

    _run(work)


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse as JSON, strings otherwise.

    Raises:
        CliError: A pair has no ``=``.
    """
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"argument {pair!r} is not key=value")
        try:
            arguments[key] = json.loads(value)
        except ValueError:
            arguments[key] = value
    return arguments


@client_app.command()
def call(
    server: Annotated[str, typer.Argument(help="MCP server URL or name in the servers file.")],
    tool: Annotated[str, typer.Argument(help="Tool name.")],
    arguments: Annotated[list[str] | None, typer.Argument(help="key=value arguments.")] = None,
    config: ConfigOption = None,
    token_dir: TokenDirOption = None,
    no_browser: NoBrowserOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """Call a tool and print its result as JSON (logs in first when needed)."""

    async def work() -> None:
        parsed = parse_arguments(arguments or [])
        target = _resolve(server, config)
        async with _connect(target, token_dir, no_browser, timeout) as client:
            result = await client.call_tool(tool, parsed)
        document = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        console.print_json(json.dumps(document))
        if result.is_error:
            raise typer.Exit(1)

    _run(work)
