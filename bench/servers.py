"""The peer servers: ``python -m bench.servers KIND PORT [ISSUER]`` (uvicorn, access log off).

Every kind serves the same MCP tool (``echo``) over stateless streamable HTTP with JSON
responses at ``/mcp``; the OAuth peers also serve their AS endpoints at the root.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

SCOPES = ["mcp:read", "mcp:write"]
STATELESS: dict[str, Any] = {"stateless_http": True, "json_response": True}


def echo_server() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench")

    @server.tool()
    async def echo(text: str) -> str:
        return text

    return server


def noauth(port: int) -> Any:
    return echo_server().streamable_http_app(streamable_http_path="/mcp", **STATELESS)


def ostiary_rs(port: int, issuer: str) -> Any:
    from ostiary.resource.mcp_sdk import protect_mcp_app
    from ostiary.resource.policy import ProtectionPolicy
    from ostiary.resource.verifiers import JWTVerifier

    resource = f"http://127.0.0.1:{port}/mcp"
    return protect_mcp_app(
        echo_server(),
        resource=resource,
        issuer=issuer,
        verifier=JWTVerifier(issuer, resource),
        policy=ProtectionPolicy(
            required_scopes=["mcp:read"],
        ),
        streamable_http_options=STATELESS,
    )


def sdk_ref(port: int) -> Any:
    from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
    from mcp.server.mcpserver import MCPServer

    from bench.sdk_provider import InMemoryProvider

    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        "bench",
        auth_server_provider=InMemoryProvider(),
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=SCOPES, default_scopes=["mcp:read"]
            ),
            required_scopes=["mcp:read"],
        ),
    )

    @server.tool()
    async def echo(text: str) -> str:
        return text

    return server.streamable_http_app(streamable_http_path="/mcp", **STATELESS)


def fastmcp(port: int) -> Any:
    from fastmcp import FastMCP
    from fastmcp.server.auth.providers.in_memory import InMemoryOAuthProvider
    from mcp.server.auth.settings import ClientRegistrationOptions

    base = f"http://127.0.0.1:{port}"
    server = FastMCP(
        "bench",
        auth=InMemoryOAuthProvider(
            base_url=base,
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=SCOPES, default_scopes=["mcp:read"]
            ),
            required_scopes=["mcp:read"],
        ),
    )

    @server.tool
    async def echo(text: str) -> str:
        return text

    return server.http_app(path="/mcp", stateless_http=True, json_response=True)


def floor(port: int) -> Any:
    """The ceiling: a bare ASGI app answering every request with a constant token response.

    No framework, no parsing, no storage, no signature: what uvicorn alone serves here, the
    most any Python token endpoint on the same server could reach.
    """
    body = b'{"access_token":"x","token_type":"Bearer","expires_in":900,"refresh_token":"r"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def ostiary_memory(port: int) -> Any:
    """``ostiary serve``'s app (AS + demo) on memory storage, with the bench user."""
    import asyncio
    import os

    from ostiary.assembly.demo import create_combined_app
    from ostiary.core.context import system_clock
    from ostiary.core.users import new_user
    from ostiary.settings import load_settings

    issuer = f"http://127.0.0.1:{port}"
    settings = load_settings(
        issuer=issuer,
        storage={"url": "memory://"},
        dev={"enabled": True},
        resources={"allowed": [f"{issuer}/mcp"]},
    )
    app = create_combined_app(settings)
    storage = app.state.ctx.storage

    async def add_user() -> None:
        await storage.initialize()
        user = await new_user(
            settings.storage.tenant,
            os.environ["BENCH_USER"],
            os.environ["BENCH_PASSWORD"],
            system_clock(),
        )
        await storage.save_user(user)

    asyncio.run(add_user())
    return app


def main() -> None:
    # Same logging for every server: WARNING on the root logger, so the SDK's per-request INFO
    # lines ("Terminating session") are not formatted anywhere (MCPServer's basicConfig is
    # then a no-op).
    logging.basicConfig(level=logging.WARNING)
    kind, port = sys.argv[1], int(sys.argv[2])
    builders = {
        "noauth": noauth,
        "sdk-ref": sdk_ref,
        "fastmcp": fastmcp,
        "ostiary-mem": ostiary_memory,
        "floor": floor,
    }
    app = ostiary_rs(port, sys.argv[3]) if kind == "ostiary-rs" else builders[kind](port)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
