"""``ostiary serve``: the authorization server (and the demo MCP server) on one port.

Also what the other commands that bind a port share: the issuer rule for a bind address
(:func:`serving_settings`) and the checks made before binding (:func:`preflight`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any

import typer

from ostiary._logging import configure_logging
from ostiary.cli._common import console, fail, load, with_storage
from ostiary.core.context import ServerContext, system_clock
from ostiary.core.storage import Storage
from ostiary.errors import ConfigurationError
from ostiary.settings import DEV_MARKER, Settings, resolve_issuer
from ostiary.storage_key import storage_cipher


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

    settings, source = serving_settings(host, port, issuer)
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
        raise fail(str(exc)) from None
    json_logs = settings.server.log_format == "json"
    configure_logging(json_format=json_logs)
    preflight(settings)
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
        raise fail(str(exc)) from None
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


def preflight(settings: Settings) -> None:
    """Before binding the port: the signing keys open with the storage encryption key (the
    first one is made here on a first start), and a hint when there are no users yet."""

    async def work(storage: Storage) -> bool:
        ctx = ServerContext.build(settings, storage, cipher=storage_cipher(settings))
        await ctx.keys.ensure(system_clock())
        return not await storage.list_users(settings.storage.tenant)

    if with_storage(settings, work):
        console.print(
            "No users yet. Create one with: [bold]ostiary users add <username>[/] "
            "(or `.venv/bin/ostiary users add alice` from this checkout)."
        )


def serving_settings(
    host: str | None, port: int | None, issuer: str | None
) -> tuple[Settings, str]:
    """Settings for a command that binds ``host``/``port``, with the one issuer rule applied
    (:func:`~ostiary.settings.resolve_issuer`); and where the issuer came from."""
    bind = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    current = load()
    overrides: dict[str, Any] = {"server": current.server.model_copy(update=bind).model_dump()}
    if issuer is not None:
        overrides["issuer"] = issuer
    try:
        return resolve_issuer(load(**overrides), overrides)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None


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
