"""mcp-remote (npm ``mcp-remote``, the stdio bridge Claude Desktop and Cursor users run).

mcp-remote speaks MCP over stdio to its parent (this test) and Streamable HTTP with OAuth to
``ostiary serve``: DCR, PKCE, the browser login, its loopback callback, the 403 step-up, and
tokens kept in ``MCP_REMOTE_CONFIG_DIR``. The browser is a recording ``BROWSER`` script; the
test logs in on the real pages from the URL mcp-remote prints and follows the redirect to
mcp-remote's callback listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests._services import node22
from tests.clients_real._support import (
    RecordingBrowser,
    add_user,
    log_in,
    node_env,
    npm_entry,
)
from tests.demo._support import USERNAME
from tests.e2e.server import free_port, running_server

pytestmark = pytest.mark.e2e

VERSION = "0.15.1"  # pinned in scripts/install-tools.sh
PROMPT = "Please authorize this client by visiting:"


class McpRemote:
    """One mcp-remote process: JSON-RPC over its stdin/stdout, logins answered from stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.logins: list[str] = []
        self.stderr: list[str] = []
        self._next_id = 0
        self._watcher = asyncio.create_task(self._answer_logins())

    async def _answer_logins(self) -> None:
        assert self.process.stderr is not None
        prompted = False
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").strip()
            self.stderr.append(text)
            if PROMPT in text:
                prompted = True
            elif prompted and text.startswith("http"):
                prompted = False
                self.logins.append(text)
                await log_in(text)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
            assert line, "mcp-remote exited:\n" + "\n".join(self.stderr)
            reply = json.loads(line)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply["result"]

    async def notify(self, method: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        await self.process.stdin.drain()

    async def initialize(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "ostiary-mcp-remote-test", "version": "1"},
            },
        )
        await self.notify("notifications/initialized")
        return result

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "tools/call", {"name": tool, "arguments": arguments or {}}
        )
        return result

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher


@asynccontextmanager
async def mcp_remote(url: str, home: Path, browser: RecordingBrowser) -> AsyncIterator[McpRemote]:
    proxy = npm_entry("mcp-remote", "dist/proxy.js")
    process = await asyncio.create_subprocess_exec(
        str(node22()),
        str(proxy),
        url,
        str(free_port()),  # the callback port (else derived from the URL's hash)
        env=node_env(home, BROWSER=str(browser.path), MCP_REMOTE_CONFIG_DIR=str(home / "auth")),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    client = McpRemote(process)
    try:
        yield client
    finally:
        await client.close()


def scope_of(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query)["scope"][0].split()


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


async def test_mcp_remote_logs_in_steps_up_and_keeps_its_tokens_across_restarts(
    tmp_path: Path,
) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    home = tmp_path / "home"
    with running_server(tmp_path / "srv") as server:
        subject = add_user(server)
        port = int(server.issuer.rsplit(":", 1)[1])
        url = f"{server.issuer}/mcp"
        async with mcp_remote(url, home, browser) as remote:
            assert (await remote.initialize())["serverInfo"]
            info = await remote.call("get_user_info")
            assert info["structuredContent"]["sub"] == subject
            assert info["structuredContent"]["username"] == USERNAME
            note = await remote.call("create_secure_note", {"title": "mr", "content": "step-up"})
            assert note.get("isError") is not True, note
            assert note["structuredContent"]["content"] == "step-up"
            assert len(remote.logins) == 2, remote.stderr  # the login, then the step-up
            assert "mcp:read" in scope_of(remote.logins[0])
            assert {"mcp:read", "mcp:write"} <= set(scope_of(remote.logins[1]))
        assert [state_of(u) for u in browser.opened()] == [state_of(u) for u in remote.logins]

        async with mcp_remote(url, home, browser) as again:
            await again.initialize()
            notes = await again.call("list_secure_notes")
            assert notes["structuredContent"]["count"] == 1
            assert again.logins == [], again.stderr
    assert len(browser.opened()) == 2

    with running_server(tmp_path / "srv", port=port) as server:
        async with mcp_remote(url, home, browser) as after_restart:
            await after_restart.initialize()
            info = await after_restart.call("get_user_info")
            assert info["structuredContent"]["sub"] == subject
            assert after_restart.logins == [], after_restart.stderr
    assert len(browser.opened()) == 2


async def test_mcp_remote_against_mixed_auth_logs_in_only_for_a_protected_tool(
    tmp_path: Path,
) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    with running_server(tmp_path / "srv", OSTIARY_DEMO__MIXED_AUTH="true") as server:
        subject = add_user(server)
        async with mcp_remote(f"{server.issuer}/mcp", tmp_path / "home", browser) as remote:
            await remote.initialize()
            echo = await remote.call("echo", {"text": "no token"})
            assert echo["structuredContent"] == {"result": "no token"}
            assert remote.logins == [], remote.stderr  # public tools: no login
            assert browser.opened() == []

            info = await remote.call("get_user_info")
            assert info.get("isError") is not True, info
            assert info["structuredContent"]["sub"] == subject
            assert len(remote.logins) == 1, remote.stderr  # the per-tool challenge
            assert "mcp:read" in scope_of(remote.logins[0])
