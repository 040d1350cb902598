"""End to end: OAuthClientAuth + the mcp SDK against ostiary's own AS and a protected MCP server.

Two real uvicorn servers on 127.0.0.1: the ostiary authorization server (SQLite storage, a
local user) and an ``mcp`` SDK server behind :func:`ostiary.resource.mcp_sdk.protect_mcp_app`
verifying the AS's JWTs. The login goes through the real login and consent pages, driven
over HTTP by ``tests.helpers.browserless``.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.routing import Mount
from typer.testing import CliRunner

from ostiary.client.auth import OAuthClientAuth
from ostiary.client.authorization import CallbackResult, callback_result_from_url
from ostiary.client.cli import client_app
from ostiary.client.registration import ClientConfig
from ostiary.client.session import open_mcp_client
from ostiary.client.token_store import FileTokenStore
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.verifiers import JWTVerifier
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.helpers.browserless import parse_form
from tests.helpers.context import build_context

pytestmark = pytest.mark.e2e

USERNAME = "alice"
PASSWORD = "correct horse battery"
REDIRECT = "http://127.0.0.1:9/callback"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "server did not start"
    return server, thread


@dataclass
class Deployment:
    issuer: str
    resource: str
    logins: list[str]


@pytest.fixture
def deployment(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Deployment]:
    as_port, rs_port = _free_port(), _free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    resource = f"http://127.0.0.1:{rs_port}/mcp"
    settings = settings_factory(
        issuer=issuer,
        storage={"url": f"sqlite:///{tmp_path}/as.db"},
        resources={"allowed": [resource]},
    )
    ctx = build_context(settings, open_storage(settings))
    inner = create_authorization_server(settings, context=ctx)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with inner.router.lifespan_context(inner):
            user = await new_user(
                settings.storage.tenant, USERNAME, PASSWORD, int(time.time()), hashing=INSECURE_TEST
            )
            await ctx.storage.save_user(user)
            yield

    mcp = MCPServer("e2e")

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    verifier = JWTVerifier(issuer=issuer, audience=resource, jwks_uri=f"{issuer}/jwks")
    rs_app = protect_mcp_app(mcp, resource=resource, issuer=issuer, verifier=verifier)
    servers = [
        _serve(Starlette(routes=[Mount("/", app=inner)], lifespan=lifespan), as_port),
        _serve(rs_app, rs_port),
    ]
    yield Deployment(issuer, resource, [])
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


async def browse(http: httpx.AsyncClient, url: str, redirect: str = REDIRECT) -> str:
    """What a browser does: follow redirects, fill the login and consent forms."""
    response = await http.get(url)
    for _ in range(10):
        location = response.headers.get("location")
        if location is not None:
            if location.startswith(redirect):
                return str(location)
            response = await http.get(httpx.URL(str(response.url)).join(location))
            continue
        page = parse_form(response.text)
        if 'name="password"' in response.text:
            form = {"csrf_token": page.csrf_token, "username": USERNAME, "password": PASSWORD}
        else:
            form = {"csrf_token": page.csrf_token, "decision": "approve"}
        response = await http.post(httpx.URL(str(response.url)).join(page.action), data=form)
    raise AssertionError("the authorization pages never redirected back")  # pragma: no cover


async def browse_to_loopback(http: httpx.AsyncClient, url: str) -> str:
    """Like :func:`browse`, stopping at the CLI's ``http://127.0.0.1:<port>/callback``."""
    query = dict(httpx.URL(url).params)
    return await browse(http, url, query["redirect_uri"])


def login_pages(deployment: Deployment) -> Callable[[str], Any]:
    async def callback(url: str) -> CallbackResult:
        deployment.logins.append(url)
        async with httpx.AsyncClient(timeout=10) as http:
            return callback_result_from_url(await browse(http, url))

    return callback


async def test_login_and_call_through_the_real_pages(
    deployment: Deployment, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    config = ClientConfig(client_name="e2e", redirect_uris=(REDIRECT,))

    auth = OAuthClientAuth(config, callback=login_pages(deployment), store=store)
    async with open_mcp_client(deployment.resource, auth) as client:
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"text": "hi"})

    assert [tool.name for tool in tools.tools] == ["echo"]
    assert result.is_error is False
    assert result.content[0].text == "hi"  # type: ignore[union-attr]
    assert auth.flow.context is not None
    assert auth.flow.context.issuer == deployment.issuer

    # A new process with the same store: no second login.
    again = OAuthClientAuth(config, callback=login_pages(deployment), store=store)
    async with open_mcp_client(deployment.resource, again) as client:
        await client.call_tool("echo", {"text": "again"})
    assert len(deployment.logins) == 1


async def test_revoked_refresh_token_leads_to_a_new_login(
    deployment: Deployment, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    config = ClientConfig(client_name="e2e", redirect_uris=(REDIRECT,))
    auth = OAuthClientAuth(config, callback=login_pages(deployment), store=store)
    async with open_mcp_client(deployment.resource, auth) as client:
        await client.list_tools()
    tokens, registration = auth.flow.tokens, auth.flow.registration
    assert tokens is not None
    assert tokens.refresh_token is not None
    assert registration is not None
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{deployment.issuer}/revoke",
            data={"token": tokens.refresh_token, "client_id": registration.client_id},
        )
    assert revoked.status_code == 200
    # Make the stored access token look expired so the next run must refresh first.
    expired = tokens.model_copy(update={"expires_at": time.time() - 1})
    await store.save_tokens(deployment.issuer, deployment.resource, expired)

    again = OAuthClientAuth(config, callback=login_pages(deployment), store=store)
    async with open_mcp_client(deployment.resource, again) as client:
        result = await client.call_tool("echo", {"text": "back"})

    assert result.content[0].text == "back"  # type: ignore[union-attr]
    assert len(deployment.logins) == 2


def test_cli_login_and_call_through_the_real_pages(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ostiary login`` opens the browser (here: a form-filling HTTP client), then ``call``."""

    def open_url(url: str, *args: object, **kwargs: object) -> bool:
        deployment.logins.append(url)

        async def visit() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                redirect = await browse_to_loopback(http, url)
                await http.get(redirect)  # the browser lands on the CLI's loopback listener

        threading.Thread(target=anyio.run, args=(visit,), daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", open_url)
    runner = CliRunner()
    store = ["--token-dir", str(tmp_path / "tokens")]

    login = runner.invoke(client_app, ["login", deployment.resource, *store])
    call = runner.invoke(client_app, ["call", deployment.resource, "echo", "text=cli", *store])

    assert login.exit_code == 0, login.output
    assert login.output.splitlines()[-1].startswith(
        f"Logged in to {deployment.resource} via {deployment.issuer} (scope: "
    )
    assert call.exit_code == 0, call.output
    assert '"text": "cli"' in call.output
    assert len(deployment.logins) == 1
