"""MCP Inspector (npm ``@modelcontextprotocol/inspector``) in ``--cli`` mode.

Without a terminal the CLI refuses an interactive OAuth login unless
``MCP_AUTO_OPEN_ENABLED=true``; then it opens (here: records) the authorization URL, prints it
on stderr ("Please navigate to: ..."), and waits on its loopback ``--callback-url``. It
registers by DCR. Its secrets go to the OS keychain, else to memory for the one run; with
``MCP_INSPECTOR_SECRET_STORE=file`` they stay on disk so that a later run with
``--stored-auth-only`` needs no login.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

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

VERSION = "2.12.0"  # pinned in scripts/install-tools.sh
AUTHORIZE = re.compile(r"(http://\S+/authorize\?\S+)")


class InspectorCli:
    def __init__(self, home: Path, browser: RecordingBrowser) -> None:
        self.launcher = npm_entry(
            "@modelcontextprotocol/inspector", "clients/launcher/build/index.js"
        )
        self.home = home
        self.env = node_env(
            home,
            BROWSER=str(browser.path),
            MCP_AUTO_OPEN_ENABLED="true",
            MCP_INSPECTOR_SECRET_STORE="file",
        )
        self.callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
        self.logins: list[str] = []

    async def run(self, url: str, *args: str) -> Any:
        """One CLI invocation; logs in on the real pages when it asks; returns its JSON."""
        process = await asyncio.create_subprocess_exec(
            str(node22()),
            str(self.launcher),
            "--cli",
            url,
            "--callback-url",
            self.callback,
            *args,
            env=self.env,
            cwd=self.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        stderr: list[str] = []

        async def answer_logins() -> None:
            assert process.stderr is not None
            while line := await process.stderr.readline():
                text = line.decode(errors="replace").rstrip()
                stderr.append(text)
                if "navigate to" in text and (match := AUTHORIZE.search(text)):
                    self.logins.append(match.group(1))
                    await log_in(match.group(1))

        try:
            out, _ = await asyncio.wait_for(
                asyncio.gather(process.stdout.read(), answer_logins()), timeout=90
            )
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert code == 0, "\n".join(stderr)
        return json.loads(out)


async def test_inspector_cli_logs_in_lists_and_calls_tools_then_reuses_the_token(
    tmp_path: Path,
) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    inspector = InspectorCli(tmp_path / "home", browser)
    with running_server(tmp_path / "srv") as server:
        subject = add_user(server)
        url = f"{server.issuer}/mcp"

        listed = await inspector.run(url, "--method", "tools/list")
        assert [tool["name"] for tool in listed["tools"]] == [
            "echo",
            "get_time",
            "public_search",
            "get_user_info",
            "create_secure_note",
            "list_secure_notes",
            "get_api_usage",
        ]
        assert len(inspector.logins) == 1
        assert len(browser.opened()) == 1

        info = await inspector.run(
            url, "--method", "tools/call", "--tool-name", "get_user_info", "--stored-auth-only"
        )
        assert info["isError"] is False
        assert info["structuredContent"]["sub"] == subject
        assert info["structuredContent"]["username"] == USERNAME
        note = await inspector.run(
            url,
            "--method", "tools/call", "--tool-name", "create_secure_note",
            "--tool-arg", "content=from the inspector", "--stored-auth-only",
        )  # fmt: skip
        assert note["structuredContent"]["content"] == "from the inspector"
    assert len(inspector.logins) == 1  # the token was stored and reused
    assert len(browser.opened()) == 1


async def test_inspector_cli_against_mixed_auth_logs_in_only_for_a_protected_tool(
    tmp_path: Path,
) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    inspector = InspectorCli(tmp_path / "home", browser)
    with running_server(tmp_path / "srv", OSTIARY_DEMO__MIXED_AUTH="true") as server:
        subject = add_user(server)
        url = f"{server.issuer}/mcp"
        echo = await inspector.run(
            url,
            "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=public",
            "--stored-auth-only",
        )  # fmt: skip
        assert echo["structuredContent"] == {"result": "public"}
        assert inspector.logins == []

        info = await inspector.run(url, "--method", "tools/call", "--tool-name", "get_user_info")
        assert info["structuredContent"]["sub"] == subject
        assert len(inspector.logins) == 1
    assert len(browser.opened()) == 1
