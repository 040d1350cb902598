"""``ostiary gateway``: OAuth in front of an MCP server that has none (HTTP or stdio upstream)."""

from __future__ import annotations

from typing import Annotated, Any, Final

import typer

from ostiary._logging import configure_logging
from ostiary.cli._common import console, fail, load
from ostiary.cli.serve import preflight, serving_settings
from ostiary.errors import ConfigurationError

#: How ``cli.main`` registers :func:`gateway` (everything after ``--`` is the stdio command).
COMMAND_SETTINGS: Final[dict[str, Any]] = {
    "context_settings": {"allow_interspersed_args": False},
    "epilog": "Examples: ostiary gateway --upstream http://127.0.0.1:9000/mcp ; "
    "ostiary gateway -- python -m ostiary.demo",
}


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

    from ostiary.assembly.gateway import create_embedded_gateway
    from ostiary.gateway.app import GatewayOptions, create_remote_gateway
    from ostiary.resource.policy import ProtectionPolicy

    if (upstream is None) == (not command):
        raise fail("give exactly one upstream: --upstream URL, or -- <stdio command>")
    tools: dict[str, list[str]] = {}
    for item in tool_scope or []:
        name, sep, scopes = item.partition("=")
        if not sep or not name or not scopes:
            raise fail(f"--tool-scope {item!r}: expected NAME=SCOPE[,SCOPE]")
        tools[name] = [s for s in scopes.split(",") if s]
    if public_tool and not mixed_auth:
        raise fail("--public-tool needs --mixed-auth: tools answer without a token only there")
    if hide_unauthorized_tools and upstream is not None:
        raise fail("--hide-unauthorized-tools needs a stdio upstream: HTTP answers pass through")
    try:
        policy = ProtectionPolicy(
            required_scopes=tuple(scope) if scope is not None else ("mcp:read",),
            tool_scopes=tools,
            public_tools=tuple(public_tool or ()),
            mixed_auth=mixed_auth,
            hide_unauthorized_tools=hide_unauthorized_tools,
        )
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    options = GatewayOptions(
        subject_header=subject_header,
        client_id_header=client_id_header,
        scopes_header=scopes_header or None,
    )
    configure_logging()
    application: Any
    if issuer is not None:
        server = load().server.model_copy(
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
        settings, source = serving_settings(host, port, None)
        server = settings.server
        console.print(f"ostiary issuer [bold]{settings.issuer}[/] ({source})", soft_wrap=True)
        preflight(settings)
        resource = f"{settings.issuer}/mcp"
        application = create_embedded_gateway(
            settings, upstream_url=upstream, command=command, policy=policy, options=options
        )
    target = upstream or " ".join(command or [])
    console.print(f"ostiary gateway [bold]{resource}[/] -> {target}")
    uvicorn.run(application, host=server.host, port=server.port, log_level="info")
