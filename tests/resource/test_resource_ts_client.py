"""The official TypeScript SDK client (``@modelcontextprotocol/sdk``) against a protected server."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests._services import TOOLS, unavailable
from tests.resource._rs_support import mint
from tests.resource.test_resource_mcp_sdk import KEY, Running, _serve

SCRIPT = Path(__file__).with_name("ts_client.mjs")


def _node_and_sdk() -> tuple[str, Path]:
    node = shutil.which("node")
    sdk = TOOLS / "node_modules" / "@modelcontextprotocol" / "sdk"
    if node is None or not (sdk / "dist" / "esm" / "client" / "index.js").exists():
        unavailable("node or @modelcontextprotocol/sdk missing (run `make tools`)")
    assert node is not None
    return node, sdk


async def ts_call(url: str, token: str | None, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    node, sdk = _node_and_sdk()
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        str(sdk),
        url,
        token or "-",
        tool,
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async for value in _serve(hide=True):
        yield value


async def test_ts_client_calls_a_tool_with_a_bearer_token(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read", sub="erin")
    answer = await ts_call(running.resource, token, "whoami", {})
    assert answer["tools"] == ["whoami", "purge", "public_search"]
    assert answer["result"]["content"][0]["text"] == "erin|erin|client-abc|''"


async def test_ts_client_without_token_is_refused(running: Running) -> None:
    answer = await ts_call(running.resource, None, "whoami", {})
    assert answer == {
        "error": "Streamable HTTP error: Error POSTing to endpoint: "
        '{"error":"invalid_token","error_description":"An access token is required."}',
        "code": 401,
    }


async def test_ts_client_missing_tool_scope_is_refused(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    answer = await ts_call(running.resource, token, "create_note", {"text": "x"})
    assert answer == {
        "error": "Streamable HTTP error: Error POSTing to endpoint: "
        '{"error":"insufficient_scope","error_description":'
        '"The access token does not carry the scope this request needs."}',
        "code": 403,
    }
