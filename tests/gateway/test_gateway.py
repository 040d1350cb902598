"""``ostiary gateway`` in front of MCP servers that have no auth at all (issue 3, Must show).

Each test runs the real ``ostiary gateway`` command as a process (AS embedded, same port) and
talks to it with the official SDK client doing the OAuth flow through the real pages:

* over stdio: the gateway runs the demo server (``python -m ostiary.demo``) as its upstream;
* over HTTP: the upstream is an official-SDK server on its own port that records every
  request's headers, so the test can assert it never saw an ``Authorization`` header and did
  see the verified subject (forged identity headers from the client replaced).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.demo._support import (
    PASSWORD,
    REDIRECT_URI,
    USERNAME,
    FormLogin,
    MemoryTokenStorage,
    mcp_headers,
    obtain_token,
    rpc,
    sdk_provider,
    sdk_session,
)
from tests.e2e.server import OSTIARY, free_port

pytestmark = pytest.mark.e2e


@dataclass
class Gateway:
    issuer: str
    env: dict[str, str]

    @property
    def resource(self) -> str:
        return f"{self.issuer}/mcp"

    def add_user(self, username: str = USERNAME) -> str:
        done = subprocess.run(
            [*OSTIARY, "users", "add", username, "--password", PASSWORD],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        match = re.search(r"subject (\S+)\)", done.stdout)
        assert match is not None, done.stdout
        return match.group(1)


@contextmanager
def running_gateway(data_dir: Path, *args: str) -> Iterator[Gateway]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OSTIARY_ISSUER": issuer,
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "OSTIARY_STORAGE__URL": f"sqlite:///{data_dir}/ostiary.db",
        "OSTIARY_DATA_DIR": str(data_dir),
        "OSTIARY_SERVER__PORT": str(port),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*OSTIARY, "gateway", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    if httpx.get(f"{issuer}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            yield Gateway(issuer, env)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def register(issuer: str) -> OAuthClientInformationFull:
    """A public client without a scope restriction (see the DCR step-up note in issue 3)."""
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{issuer}/register",
            json={
                "client_name": "gateway-e2e",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            },
        )
    assert response.status_code == 201, response.text
    return OAuthClientInformationFull.model_validate(response.json())


# --- stdio upstream ---------------------------------------------------------------------------


@pytest.fixture
def stdio_gateway(tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path / "gw",
        "--mixed-auth",
        "--public-tool",
        "echo",
        "--tool-scope",
        "create_secure_note=mcp:write",
        "--",
        sys.executable,
        "-m",
        "ostiary.demo",
        "--subject",
        "stdio-user",
    ) as gateway:
        yield gateway


async def test_stdio_upstream_behind_the_gateway(stdio_gateway: Gateway) -> None:
    gateway = stdio_gateway
    gateway.add_user()
    # Without a token: the public tool works, anything else is challenged.
    async with sdk_session(gateway.resource) as anonymous:
        listing = await anonymous.list_tools()
        echoed = await anonymous.call_tool("echo", {"text": "hi"})
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            gateway.resource,
            json=rpc("tools/call", {"name": "get_user_info", "arguments": {}}),
            headers=mcp_headers(),
        )
    assert [t.name for t in listing.tools] == [
        "echo",
        "get_time",
        "public_search",
        "get_user_info",
        "create_secure_note",
        "list_secure_notes",
        "get_api_usage",
    ]
    schemes = {t.name: (t.meta or {})["securitySchemes"] for t in listing.tools}
    assert schemes["echo"] == [{"type": "noauth"}, {"type": "oauth2", "scopes": ["mcp:read"]}]
    assert schemes["create_secure_note"] == [
        {"type": "oauth2", "scopes": ["mcp:read", "mcp:write"]}
    ]
    assert echoed.structured_content == {"result": "hi"}
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{gateway.issuer}'
        '/.well-known/oauth-protected-resource/mcp"'
    )
    # With the official SDK's OAuth client: login through the pages, then step-up.
    storage, login = MemoryTokenStorage(), FormLogin()
    storage.client = await register(gateway.issuer)
    provider = sdk_provider(gateway.resource, storage, login)
    async with sdk_session(gateway.resource, auth=provider) as session:
        info = await session.call_tool("get_user_info", {})
        note = await session.call_tool("create_secure_note", {"content": "via stdio"})
        notes = await session.call_tool("list_secure_notes", {})
    # The stdio server knows only its environment's identity: no token went down the pipe.
    assert info.structured_content == {
        "sub": "stdio-user",
        "username": None,
        "client_id": None,
        "scopes": ["mcp:read", "mcp:write"],
    }
    assert note.structured_content is not None
    assert note.structured_content["content"] == "via stdio"
    assert notes.structured_content is not None
    assert notes.structured_content["count"] == 1
    assert [s.split() for s in login.requested_scopes()] == [
        ["mcp:read", "offline_access"],
        ["mcp:read", "offline_access", "mcp:write"],
    ]


# --- HTTP upstream ----------------------------------------------------------------------------


class RecordHeaders:
    """ASGI wrapper keeping every HTTP request's headers (lower-case names, decoded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


def upstream_server() -> MCPServer:
    mcp = MCPServer("no-auth-upstream")

    @mcp.tool()
    async def shout(text: str) -> str:
        return text.upper()

    @mcp.tool()
    async def whisper(text: str) -> str:
        return text.lower()

    return mcp


@pytest.fixture
async def http_upstream() -> AsyncIterator[tuple[str, RecordHeaders]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    recorder = RecordHeaders(upstream_server().streamable_http_app())  # the SDK defaults
    server = uvicorn.Server(uvicorn.Config(recorder, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield url, recorder
    finally:
        server.should_exit = True
        await task


async def test_http_upstream_sees_the_subject_and_never_the_token(
    http_upstream: tuple[str, RecordHeaders], tmp_path: Path
) -> None:
    url, recorder = http_upstream
    with running_gateway(
        tmp_path / "gw",
        "--upstream",
        url,
        "--tool-scope",
        "shout=mcp:write",
        "--subject-header",
        "x-user",
        "--client-id-header",
        "x-client",
    ) as gateway:
        subject = gateway.add_user()
        # By default nothing reaches the upstream without a token: not initialize, not GET.
        async with httpx.AsyncClient() as http:
            tokenless_init = await http.post(
                gateway.resource,
                json=rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}),
                headers=mcp_headers(),
            )
            tokenless_get = await http.get(
                gateway.resource, headers={"Accept": "text/event-stream"}
            )
        assert recorder.seen == []
        challenge = (
            f'Bearer scope="mcp:read", resource_metadata="{gateway.issuer}'
            '/.well-known/oauth-protected-resource/mcp"'
        )
        for refused in (tokenless_init, tokenless_get):
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == challenge
        storage, login = MemoryTokenStorage(), FormLogin()
        storage.client = await register(gateway.issuer)
        provider = sdk_provider(gateway.resource, storage, login)
        async with sdk_session(gateway.resource, auth=provider) as session:
            tools = await session.list_tools()
            quiet = await session.call_tool("whisper", {"text": "HeLLo"})
            loud = await session.call_tool("shout", {"text": "HeLLo"})  # 403, step-up
        # A client forging the identity headers gets them replaced.
        issued = await obtain_token(gateway.issuer, gateway.resource)
        async with httpx.AsyncClient() as http:
            forged = await http.post(
                gateway.resource,
                json=rpc(
                    "initialize",
                    {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "0"},
                    },
                ),
                headers=mcp_headers(
                    issued.access_token,
                    **{
                        "x-user": "mallory",
                        "x-client": "evil",
                        # The default names, not the ones configured: dropped all the same.
                        "x-ostiary-subject": "mallory",
                        "x-ostiary-client-id": "evil",
                    },
                ),
            )
    assert [t.name for t in tools.tools] == ["shout", "whisper"]
    assert quiet.structured_content == {"result": "hello"}
    assert loud.structured_content == {"result": "HELLO"}
    assert forged.status_code == 200, forged.text
    assert storage.client is not None
    assert recorder.seen, "the upstream saw no request"
    # The upstream never saw a token, and every request carried the verified identity.
    assert [h for h in recorder.seen if "authorization" in h] == []
    assert {h.get("x-user") for h in recorder.seen} == {subject}
    assert {h.get("x-client") for h in recorder.seen} == {
        storage.client.client_id,
        issued.client_id,
    }
    scopes: set[Any] = {h.get("x-ostiary-scopes") for h in recorder.seen}
    assert scopes == {"mcp:read", "mcp:read mcp:write"}
    forged_names = {"x-ostiary-subject", "x-ostiary-client-id"}
    assert [sorted(forged_names & set(h)) for h in recorder.seen if forged_names & set(h)] == []


def test_public_tools_without_mixed_auth_stop_the_gateway_before_it_binds(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [*OSTIARY, "gateway", "--public-tool", "echo", "--", sys.executable, "-m", "ostiary.demo"],
        env={**os.environ, "OSTIARY_DEV__ENABLED": "true", "OSTIARY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--public-tool needs --mixed-auth" in result.stderr + result.stdout


# --- remote authorization server ------------------------------------------------------------


async def test_gateway_trusting_a_remote_issuer_checks_the_audience(
    http_upstream: tuple[str, RecordHeaders], tmp_path: Path
) -> None:
    """``--issuer``: JWTs from another process's AS, verified against its JWKS; a token the
    same AS minted for its own demo server is refused (audience binding)."""
    from tests.e2e.server import running_server

    url, recorder = http_upstream
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with running_server(
        tmp_path / "as", OSTIARY_RESOURCES__ALLOW_ANY="true"
    ) as authorization_server:
        authorization_server.add_user(USERNAME, PASSWORD)
        env = {**authorization_server.env, "OSTIARY_SERVER__PORT": str(port)}
        log_path = tmp_path / "gateway.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *OSTIARY,
                    "gateway",
                    "--upstream",
                    url,
                    "--issuer",
                    authorization_server.issuer,
                    "--resource",
                    resource,
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                prm = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
                deadline = time.monotonic() + 30
                while True:
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    try:
                        metadata = httpx.get(prm, timeout=1)
                        break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                mine = await obtain_token(authorization_server.issuer, resource)
                theirs = await obtain_token(
                    authorization_server.issuer, f"{authorization_server.issuer}/mcp"
                )
                body = rpc(
                    "initialize",
                    {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "0"},
                    },
                )
                async with httpx.AsyncClient() as http:
                    accepted = await http.post(
                        resource, json=body, headers=mcp_headers(mine.access_token)
                    )
                    refused = await http.post(
                        resource, json=body, headers=mcp_headers(theirs.access_token)
                    )
            finally:
                process.terminate()
                process.wait(10)
    assert metadata.json() == {
        "resource": resource,
        "authorization_servers": [authorization_server.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:read"],
        "resource_name": "ostiary gateway",
    }
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", '
        'error_description="The access token was issued for another resource."'
    )
    assert len(recorder.seen) == 1  # only the accepted request reached the upstream
    assert "authorization" not in recorder.seen[0]
    claims = json.loads(base64.urlsafe_b64decode(mine.access_token.split(".")[1] + "=="))
    assert recorder.seen[0]["x-ostiary-subject"] == claims["sub"]
