"""The ``ostiary`` command: serve, users, clients, keys, check-config (typer + rich).

Every command builds Settings from the environment (``OSTIARY_…``, ``.env``) plus its flags and
talks to the same storage the server uses. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ostiary._logging import configure_logging
from ostiary.client.cli import client_app
from ostiary.core import totp
from ostiary.core.client_id_metadata import is_client_id_metadata_url
from ostiary.core.context import ServerContext, system_clock
from ostiary.core.models import Client, User
from ostiary.core.registration import build_registered_client
from ostiary.core.storage import Storage
from ostiary.core.users import hash_password, new_user, validate_password, with_totp_secret
from ostiary.errors import ConfigurationError, OAuthError, StorageError
from ostiary.settings import DEV_MARKER, Settings, load_settings, resolve_issuer
from ostiary.storage import open_storage
from ostiary.storage_key import KEY_FILE_NAME, storage_cipher

app = typer.Typer(no_args_is_help=True, help="OAuth 2.1 for MCP servers.")
users_app = typer.Typer(no_args_is_help=True, help="Local user accounts.")
clients_app = typer.Typer(no_args_is_help=True, help="Registered OAuth clients.")
keys_app = typer.Typer(no_args_is_help=True, help="Access-token signing keys.")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
totp_app = typer.Typer(no_args_is_help=True, help="TOTP second factor of a local user.")
users_app.add_typer(totp_app, name="totp")
admin_app = typer.Typer(no_args_is_help=True, help="Operator console (/admin) access.")
users_app.add_typer(admin_app, name="admin")
# The MCP client commands (login, logout, whoami, tools, call) sit at the top level.
app.add_typer(client_app)

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _with_storage(settings: Settings, work: Callable[[Storage], Awaitable[T]]) -> T:
    async def run() -> T:
        storage = open_storage(settings)
        try:
            await storage.initialize()
            return await work(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(run())
    except (ConfigurationError, StorageError, OAuthError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL.")] = None,
    demo: Annotated[
        bool, typer.Option(help="Serve the demo MCP server at {issuer}/mcp next to the AS.")
    ] = True,
    read_scope: Annotated[
        str | None, typer.Option(help="Scope the demo's read tools need [demo.read_scope].")
    ] = None,
    write_scope: Annotated[
        str | None, typer.Option(help="Scope create_secure_note needs [demo.write_scope].")
    ] = None,
    hide_unauthorized_tools: Annotated[
        bool | None,
        typer.Option(
            help="Hide from tools/list the demo tools a token cannot call "
            "[demo.hide_unauthorized_tools]."
        ),
    ] = None,
    mixed_auth: Annotated[
        bool | None,
        typer.Option(
            help="Let clients connect to the demo and call its public tools without a token "
            "[demo.mixed_auth]."
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every HTTP request (uvicorn access log).")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(help="Processes accepting on the port (SQLite or PostgreSQL storage)."),
    ] = 1,
) -> None:
    """Run the authorization server and the demo MCP server (one port) with uvicorn."""
    import uvicorn

    from ostiary.assembly import serving

    settings, source = _serving_settings(host, port, issuer)
    server = settings.server
    options = serving.ServeOptions(
        demo=demo,
        read_scope=read_scope,
        write_scope=write_scope,
        hide_unauthorized_tools=hide_unauthorized_tools,
        mixed_auth=mixed_auth,
    )
    try:
        serving.check_workers(settings, workers)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    json_logs = settings.server.log_format == "json"
    configure_logging(json_format=json_logs)
    _preflight(settings)
    _remember_dev_mode(settings)  # only once the data directory proved usable
    console.print(
        f"ostiary issuer [bold]{settings.issuer}[/] ({source}) on {server.host}:{server.port}",
        soft_wrap=True,
    )
    if workers > 1 and settings.metrics.enabled:
        # prometheus_client's multi-process mode: every worker writes its samples here and
        # /metrics (any worker, or the metrics.bind listener below) sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ostiary-metrics-")
    try:  # built here even with workers: a bad demo scope stops serve before it binds
        application: Any = serving.build_app(settings, options)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    if settings.metrics.bind is not None:
        serving.start_metrics_listener(settings.metrics.bind, application)
        console.print(f"metrics on http://{settings.metrics.bind}/metrics")
    if demo:
        console.print(
            f"demo MCP server [bold]{settings.issuer}/mcp[/] (PRM "
            f"{settings.issuer}/.well-known/oauth-protected-resource/mcp)"
        )
    run: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "log_level": "info",
        "access_log": access_log,
        "proxy_headers": settings.server.trust_forwarded_for,
        "timeout_graceful_shutdown": settings.server.shutdown_timeout,
    }
    if json_logs:
        run["log_config"] = None  # uvicorn's loggers keep the JSON handlers set up above
    if workers == 1:
        uvicorn.run(application, **run)
        return
    os.environ[serving.OPTIONS_ENV] = serving.worker_environment(settings, options)
    console.print(f"{workers} worker processes")
    uvicorn.run("ostiary.assembly.serving:worker_app", factory=True, workers=workers, **run)


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Examples: ostiary gateway --upstream http://127.0.0.1:9000/mcp ; "
    "ostiary gateway -- python -m ostiary.demo",
)
def gateway(
    command: Annotated[
        list[str] | None, typer.Argument(help="stdio MCP server to run (after --).")
    ] = None,
    upstream: Annotated[str | None, typer.Option(help="HTTP MCP endpoint to protect.")] = None,
    issuer: Annotated[
        str | None,
        typer.Option(help="Remote authorization server; default: embedded (same port)."),
    ] = None,
    resource: Annotated[
        str | None, typer.Option(help="Gateway URL (token audience) with a remote issuer.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope every request needs (repeat).")
    ] = None,
    tool_scope: Annotated[
        list[str] | None, typer.Option(help="NAME=SCOPE[,SCOPE]: scopes one tool needs.")
    ] = None,
    public_tool: Annotated[
        list[str] | None,
        typer.Option(help="Tool callable without a token (repeat; needs --mixed-auth)."),
    ] = None,
    mixed_auth: Annotated[
        bool,
        typer.Option(
            help="Let clients connect and list tools without a token (per-tool challenges)."
        ),
    ] = False,
    hide_unauthorized_tools: Annotated[
        bool, typer.Option(help="Hide tools the token cannot call (stdio upstreams).")
    ] = False,
    subject_header: Annotated[
        str, typer.Option(help="Header carrying the verified subject upstream.")
    ] = "x-ostiary-subject",
    client_id_header: Annotated[
        str | None, typer.Option(help="Header carrying the client id upstream.")
    ] = None,
    scopes_header: Annotated[
        str, typer.Option(help="Header carrying the granted scopes upstream ('' for none).")
    ] = "x-ostiary-scopes",
) -> None:
    """Put OAuth in front of an MCP server that has none (HTTP upstream or stdio command)."""
    import uvicorn

    from ostiary.gateway.app import (
        GatewayOptions,
        create_embedded_gateway,
        create_remote_gateway,
    )
    from ostiary.resource.policy import ProtectionPolicy

    if (upstream is None) == (not command):
        raise _fail("give exactly one upstream: --upstream URL, or -- <stdio command>")
    tools: dict[str, list[str]] = {}
    for item in tool_scope or []:
        name, sep, scopes = item.partition("=")
        if not sep or not name or not scopes:
            raise _fail(f"--tool-scope {item!r}: expected NAME=SCOPE[,SCOPE]")
        tools[name] = [s for s in scopes.split(",") if s]
    if public_tool and not mixed_auth:
        raise _fail("--public-tool needs --mixed-auth: tools answer without a token only there")
    if hide_unauthorized_tools and upstream is not None:
        raise _fail("--hide-unauthorized-tools needs a stdio upstream: HTTP answers pass through")
    try:
        policy = ProtectionPolicy(
            required_scopes=tuple(scope) if scope is not None else ("mcp:read",),
            tool_scopes=tools,
            public_tools=tuple(public_tool or ()),
            mixed_auth=mixed_auth,
            hide_unauthorized_tools=hide_unauthorized_tools,
        )
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    options = GatewayOptions(
        subject_header=subject_header,
        client_id_header=client_id_header,
        scopes_header=scopes_header or None,
    )
    configure_logging()
    application: Any
    if issuer is not None:
        server = _settings().server.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
        resource = resource or f"http://{server.host}:{server.port}/mcp"
        application = create_remote_gateway(
            issuer=issuer,
            resource=resource,
            upstream_url=upstream,
            command=command,
            policy=policy,
            options=options,
        )
    else:
        settings, source = _serving_settings(host, port, None)
        server = settings.server
        console.print(f"ostiary issuer [bold]{settings.issuer}[/] ({source})", soft_wrap=True)
        _preflight(settings)
        resource = f"{settings.issuer}/mcp"
        application = create_embedded_gateway(
            settings, upstream_url=upstream, command=command, policy=policy, options=options
        )
    target = upstream or " ".join(command or [])
    console.print(f"ostiary gateway [bold]{resource}[/] -> {target}")
    uvicorn.run(application, host=server.host, port=server.port, log_level="info")


def _preflight(settings: Settings) -> None:
    """Before binding the port: the signing keys open with the storage encryption key (the
    first one is made here on a first start), and a hint when there are no users yet."""

    async def work(storage: Storage) -> bool:
        ctx = ServerContext.build(settings, storage, cipher=storage_cipher(settings))
        await ctx.keys.ensure(system_clock())
        return not await storage.list_users(settings.storage.tenant)

    if _with_storage(settings, work):
        console.print(
            "No users yet. Create one with: [bold]ostiary users add <username>[/] "
            "(or `.venv/bin/ostiary users add alice` from this checkout)."
        )


def _serving_settings(
    host: str | None, port: int | None, issuer: str | None
) -> tuple[Settings, str]:
    """Settings for a command that binds ``host``/``port``, with the one issuer rule applied
    (:func:`~ostiary.settings.resolve_issuer`); and where the issuer came from."""
    bind = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    current = _settings()
    overrides: dict[str, Any] = {"server": current.server.model_copy(update=bind).model_dump()}
    if issuer is not None:
        overrides["issuer"] = issuer
    try:
        return resolve_issuer(_settings(**overrides), overrides)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _remember_dev_mode(settings: Settings) -> None:
    """Leave the dev-mode marker in the data directory, so later commands on it agree."""
    if not settings.dev.enabled:
        return
    marker = settings.data_dir / DEV_MARKER
    if marker.exists():
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "This data directory was made by `ostiary serve` in dev mode (make serve): every\n"
        "ostiary command using it runs in dev mode (plain-http loopback issuer allowed).\n"
        "Delete this file, or set OSTIARY_DEV__ENABLED=false, to turn dev mode off.\n"
    )
    console.print(f"dev mode remembered in {marker}")


@app.command("check-config")
def check_config(
    host: Annotated[str | None, typer.Option(help="Bind address, as given to serve.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port, as given to serve.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL, as given to serve.")] = None,
) -> None:
    """Validate the settings from the environment and print them (secrets hidden)."""
    settings, source = _serving_settings(host, port, issuer)
    console.print_json(settings.model_dump_json())
    console.print(f"issuer {settings.issuer} ({source})", soft_wrap=True)
    for relaxed in settings.relaxed_checks():
        console.print(f"[yellow]DEV MODE:[/] {relaxed}")
    console.print(f"secrets at rest: sealed with {_key_source(settings)}")
    console.print("[green]configuration is valid[/]")


def _key_source(settings: Settings) -> str:
    """Where the storage encryption key comes from, without creating anything."""
    if settings.storage.encryption_key is not None:
        return "storage.encryption_key"
    if settings.storage.url.startswith("memory://"):
        return "a key made per process (memory:// storage keeps nothing)"
    path = settings.data_dir / KEY_FILE_NAME
    return f"the key file {path}" + ("" if path.exists() else " (created on first start)")


def _read_password(password: str | None) -> str:
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=sys.stdin.isatty())
    try:
        validate_password(password)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return password


async def _user(storage: Storage, settings: Settings, username: str) -> User:
    user = await storage.get_user_by_username(settings.storage.tenant, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    return user


async def _revoke_all(storage: Storage, settings: Settings, subject: str) -> int:
    """Revoke every live grant of ``subject`` (each cascades to its codes and tokens)."""
    tenant = settings.storage.tenant
    now = system_clock()
    revoked = 0
    for grant in await storage.list_grants(tenant, subject):
        if await storage.revoke_grant(tenant, grant.grant_id, now):
            revoked += 1
        await storage.delete_consents(tenant, subject, grant.client_id)
    return revoked


@users_app.command("add")
def users_add(
    username: str,
    password: Annotated[str | None, typer.Option(help="Password (prompted when absent).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown on the pages.")] = None,
) -> None:
    """Create a local user."""
    settings = _settings()
    secret = _read_password(password)

    async def work(storage: Storage) -> str:
        tenant = settings.storage.tenant
        if await storage.get_user_by_username(tenant, username) is not None:
            raise ValueError(f"user {username!r} already exists")
        user = await new_user(tenant, username, secret, system_clock(), display_name)
        await storage.save_user(user)
        return user.user_id

    user_id = _with_storage(settings, work)
    console.print(f"created user [bold]{username}[/] (subject {user_id})")


@users_app.command("list")
def users_list() -> None:
    """List local users with their state and how many apps they connected."""
    settings = _settings()

    async def work(storage: Storage) -> list[tuple[User, int]]:
        tenant = settings.storage.tenant
        return [
            (user, len(await storage.list_grants(tenant, user.user_id)))
            for user in await storage.list_users(tenant)
        ]

    rows = _with_storage(settings, work)
    table = Table("username", "name", "subject", "created", "status", "2FA", "admin", "grants")
    for user, grants in rows:
        table.add_row(
            user.username,
            user.display_name or "-",
            user.user_id,
            _when(user.created_at),
            "[red]disabled[/]" if user.disabled else "[green]active[/]",
            "totp" if user.totp_secret else "-",
            "admin" if user.admin else "-",
            str(grants),
        )
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> int:
    settings = _settings()

    async def work(storage: Storage) -> int:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, disabled=disabled))
        return await _revoke_all(storage, settings, user.user_id) if disabled else 0

    return _with_storage(settings, work)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Block sign-in and revoke every grant of the user at once (sessions end too)."""
    revoked = _set_disabled(username, True)
    console.print(f"disabled [bold]{username}[/]; revoked {revoked} grant(s)")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Allow a disabled user to sign in again (revoked grants stay revoked)."""
    _set_disabled(username, False)
    console.print(f"enabled [bold]{username}[/]")


@users_app.command("revoke-grants")
def users_revoke_grants(username: str) -> None:
    """Revoke every app's access for the user: grants, codes, refresh and access tokens."""
    settings = _settings()

    async def work(storage: Storage) -> int:
        return await _revoke_all(
            storage, settings, (await _user(storage, settings, username)).user_id
        )

    revoked = _with_storage(settings, work)
    console.print(f"revoked {revoked} grant(s) of [bold]{username}[/]")


@users_app.command("remove")
def users_remove(username: str) -> None:
    """Delete a user and revoke all of their grants."""
    settings = _settings()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.delete_user(settings.storage.tenant, user.user_id)

    _with_storage(settings, work)
    console.print(f"removed user [bold]{username}[/]")


@users_app.command("passwd")
def users_passwd(
    username: str,
    password: Annotated[str | None, typer.Option(help="New password (prompted).")] = None,
) -> None:
    """Reset a user's password (their existing grants are kept; see revoke-grants)."""
    settings = _settings()
    secret = _read_password(password)

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, password_hash=await hash_password(secret)))

    _with_storage(settings, work)
    console.print(f"password changed for [bold]{username}[/]")


@totp_app.command("enable")
def users_totp_enable(username: str) -> None:
    """Enrol a TOTP authenticator (RFC 6238); prints the otpauth:// URI to import."""
    settings = _settings()
    secret = totp.new_secret()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.save_user(with_totp_secret(user, secret, storage_cipher(settings)))

    _with_storage(settings, work)
    issuer = settings.ui.product_name
    console.print(f"TOTP enabled for [bold]{username}[/]. Add this to an authenticator app:")
    console.print(totp.provisioning_uri(secret, username, issuer), soft_wrap=True, highlight=False)


@totp_app.command("disable")
def users_totp_disable(username: str) -> None:
    """Remove the user's TOTP second factor."""
    settings = _settings()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, totp_secret=None))

    _with_storage(settings, work)
    console.print(f"TOTP disabled for [bold]{username}[/]")


def _set_admin(username: str, admin: bool) -> User:
    settings = _settings()

    async def work(storage: Storage) -> User:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, admin=admin))
        return user

    return _with_storage(settings, work)


@admin_app.command("grant")
def users_admin_grant(username: str) -> None:
    """Let the user open the operator console at {issuer}/admin."""
    settings = _settings()
    user = _set_admin(username, True)
    console.print(f"[bold]{username}[/] is an administrator")
    if settings.security.admin_requires_totp and not user.totp_secret:
        console.print(
            f"they need a second factor first: ostiary users totp enable {username}",
            highlight=False,
        )


@admin_app.command("revoke")
def users_admin_revoke(username: str) -> None:
    """Take the operator console away from the user."""
    _set_admin(username, False)
    console.print(f"[bold]{username}[/] is no longer an administrator")


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Option(help="Client name shown on the consent page.")],
    redirect_uri: Annotated[list[str] | None, typer.Option(help="Redirect URI (repeat).")] = None,
    auth_method: Annotated[str, typer.Option(help="Token endpoint auth method.")] = "none",
    grant_type: Annotated[list[str] | None, typer.Option(help="Grant type (repeat).")] = None,
    scope: Annotated[str | None, typer.Option(help="Allowed scopes.")] = None,
    application_type: Annotated[str, typer.Option(help="native or web.")] = "native",
    logo_uri: Annotated[str | None, typer.Option(help="https logo on the consent page.")] = None,
    client_uri: Annotated[str | None, typer.Option(help="https home page of the app.")] = None,
) -> None:
    """Pre-register a client; prints its client_id (and secret, once)."""
    settings = _settings()
    metadata: dict[str, Any] = {
        "client_name": name,
        "redirect_uris": redirect_uri or [],
        "token_endpoint_auth_method": auth_method,
        "application_type": application_type,
    }
    if grant_type:
        metadata["grant_types"] = grant_type
        metadata["response_types"] = ["code"] if "authorization_code" in grant_type else []
    if scope:
        metadata["scope"] = scope
    metadata.update({k: v for k, v in (("logo_uri", logo_uri), ("client_uri", client_uri)) if v})

    async def work(storage: Storage) -> dict[str, Any]:
        client, issued = build_registered_client(
            metadata,
            tenant_id=settings.storage.tenant,
            now=system_clock(),
            supported_scopes=settings.scopes.supported,
            client_credentials_enabled=settings.features.client_credentials,
            jwt_bearer_enabled=bool(settings.enterprise.trusted_issuers),
            secret_ttl=0,
        )
        await storage.save_client(replace(client, source="static"))
        return {"client_id": client.client_id, "client_secret": issued.client_secret}

    result = _with_storage(settings, work)
    console.print_json(json.dumps({k: v for k, v in result.items() if v is not None}))


@clients_app.command("list")
def clients_list() -> None:
    """List registered clients (pre-registered, dynamically registered and cached CIMD)."""
    settings = _settings()
    clients = _with_storage(settings, lambda s: s.list_clients(settings.storage.tenant))
    table = Table(
        "client_id", "name", "kind", "state", "type", "auth", "redirect URIs", "registered"
    )
    for c in clients:
        table.add_row(
            c.client_id,
            c.client_name or "-",
            c.source,
            "[red]disabled[/]" if c.disabled else "[green]enabled[/]",
            c.application_type,
            c.token_endpoint_auth_method,
            "\n".join(c.redirect_uris),
            _when(c.client_id_issued_at),
        )
    console.print(table)


@clients_app.command("remove")
def clients_remove(client_id: str) -> None:
    """Delete a client and revoke every grant issued to it."""
    settings = _settings()
    found = _with_storage(settings, lambda s: s.delete_client(settings.storage.tenant, client_id))
    if not found:
        raise _fail(f"no client {client_id!r}")
    console.print(f"removed client [bold]{client_id}[/]")


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Refuse a client everywhere (authorize, token, refresh, introspection); grants stay.

    Works for a metadata-document (URL) client_id too. Access tokens already issued live
    out their lifetime; ``clients remove`` also revokes the grants.
    """
    _set_client_disabled(client_id, disabled=True)
    console.print(f"disabled client [bold]{client_id}[/]")


@clients_app.command("enable")
def clients_enable(client_id: str) -> None:
    """Accept a disabled client again."""
    _set_client_disabled(client_id, disabled=False)
    console.print(f"enabled client [bold]{client_id}[/]")


def _set_client_disabled(client_id: str, *, disabled: bool) -> None:
    settings = _settings()
    tenant = settings.storage.tenant

    async def work(storage: Storage) -> bool:
        client = await storage.get_client(tenant, client_id)
        if client is None:
            if not (disabled and is_client_id_metadata_url(client_id)):
                return False
            # The resolver caches metadata-document clients in memory: store a block entry.
            client = Client(tenant, client_id, redirect_uris=(), source="cimd")
        await storage.save_client(replace(client, disabled=disabled))
        return True

    if not _with_storage(settings, work):
        raise _fail(f"no client {client_id!r}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; old keys stay in JWKS until their tokens expire."""
    settings = _settings()

    async def work(storage: Storage) -> str:
        ctx = ServerContext.build(settings, storage, cipher=storage_cipher(settings))
        return (await ctx.keys.rotate(system_clock())).kid

    console.print(f"new signing key [bold]{_with_storage(settings, work)}[/]")


@keys_app.command("list")
def keys_list() -> None:
    """List signing keys and their state."""
    settings = _settings()
    keys = _with_storage(settings, lambda s: s.list_signing_keys(settings.storage.tenant))
    table = Table("kid", "alg", "created", "state", "published until")
    for k in keys:
        state = "active" if k.retired_at is None else "retired"
        table.add_row(k.kid, k.alg, _when(k.created_at), state, _when(k.expires_at))
    console.print(table)


def main() -> None:
    app()
