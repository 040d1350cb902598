"""OpenAI Codex CLI (npm ``@openai/codex``, a native binary behind a Node launcher).

``codex mcp add --url`` logs in at once through its loopback callback listener;
``codex mcp login --no-browser`` prints the URL and reads the pasted redirect back. The tool
call goes through ``codex app-server`` (JSON-RPC over stdio: ``thread/start`` and
``mcpServer/tool/call``), which needs no model and no OpenAI account.

Codex's default client registration is ``auto``: against an authorization server that
advertises Client ID Metadata Documents (ostiary does by default) it uses the client_id
``https://chatgpt.com/oauth/codex/client.json``, which the server must fetch from the internet.
The tests have no internet, so they pass ``--oauth-client-registration dcr``.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
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
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

VERSION = "0.171.0"  # pinned in scripts/install-tools.sh
AUTHORIZE = re.compile(r"^(http://\S+/authorize\?\S+)$")


class Codex:
    def __init__(self, home: Path, browser: RecordingBrowser) -> None:
        self.launcher = npm_entry("@openai/codex", "bin/codex.js")
        self.env = node_env(home, CODEX_HOME=str(home / "codex"), BROWSER=str(browser.path))
        (home / "codex").mkdir(parents=True, exist_ok=True)
        self.home = home / "codex"

    def argv(self, *args: str) -> list[str]:
        return [str(node22()), str(self.launcher), *args]

    def run(self, *args: str) -> str:
        done = subprocess.run(
            self.argv(*args), env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"codex {args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    async def logging_in(self, *args: str, paste: bool) -> tuple[list[str], str]:
        """Run a command that logs in; returns the authorization URLs and the output.

        ``paste`` answers the prompt on stdin with the redirect; otherwise the redirect is
        followed to codex's loopback listener, as a browser would.
        """
        process = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        urls: list[str] = []
        output: list[str] = []
        try:
            while line := await asyncio.wait_for(process.stdout.readline(), timeout=60):
                text = line.decode(errors="replace").rstrip()
                output.append(text)
                if match := AUTHORIZE.match(text):
                    urls.append(match.group(1))
                    location = await log_in(match.group(1), deliver=not paste)
                    if paste:
                        process.stdin.write(location.encode() + b"\n")
                        await process.stdin.drain()
            assert await asyncio.wait_for(process.wait(), 30) == 0, "\n".join(output)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return urls, "\n".join(output)

    def auth_status(self, name: str) -> str:
        servers = {s["name"]: s for s in json.loads(self.run("mcp", "list", "--json"))}
        status: str = servers[name]["auth_status"]
        return status


class AppServer:
    """``codex app-server`` over stdio: requests out, replies in, notifications skipped."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
            assert line, "codex app-server exited"
            reply = json.loads(line)
            if reply.get("id") == self._next_id and "method" not in reply:
                assert "error" not in reply, reply
                return reply["result"]


async def call_tool(codex: Codex, server: str, tool: str, arguments: dict[str, Any]) -> Any:
    process = await asyncio.create_subprocess_exec(
        *codex.argv("app-server"),
        env=codex.env,
        cwd=codex.home,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    app = AppServer(process)
    try:
        await app.request("initialize", {"clientInfo": {"name": "ostiary-test", "version": "1"}})
        assert process.stdin is not None
        process.stdin.write(b'{"method": "initialized"}\n')
        thread = await app.request("thread/start", {"ephemeral": True})
        return await app.request(
            "mcpServer/tool/call",
            {
                "server": server,
                "threadId": thread["thread"]["id"],
                "tool": tool,
                "arguments": arguments,
            },
        )
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def test_codex_mcp_add_logs_in_and_app_server_calls_the_tools(tmp_path: Path) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    codex = Codex(tmp_path / "home", browser)
    assert VERSION in codex.run("--version")
    with running_server(tmp_path / "srv") as server:
        subject = add_user(server)
        url = f"{server.issuer}/mcp"
        urls, output = await codex.logging_in(
            "mcp", "add", "demo", "--url", url, "--oauth-client-registration", "dcr", paste=False
        )
        assert "Successfully logged in" in output
        assert len(urls) == 1
        assert browser.opened() == urls  # it opened the browser, and printed the same URL
        login = query(urls[0])
        assert login["scope"].split() == ["mcp:read", "mcp:write", "offline_access"]
        assert login["resource"] == url
        assert urlsplit(login["redirect_uri"]).hostname == "127.0.0.1"
        assert (codex.home / ".credentials.json").exists()  # no keyring here: the file store
        assert codex.auth_status("demo") == "o_auth"

        info = await call_tool(codex, "demo", "get_user_info", {})
        assert info["isError"] is False
        assert info["structuredContent"]["sub"] == subject
        assert info["structuredContent"]["username"] == USERNAME
        assert info["structuredContent"]["scopes"] == ["mcp:read", "mcp:write"]
        note = await call_tool(codex, "demo", "create_secure_note", {"content": "from codex"})
        assert note["isError"] is False
        assert note["structuredContent"]["content"] == "from codex"
    assert len(browser.opened()) == 1


async def test_codex_mcp_login_no_browser_takes_the_pasted_redirect(tmp_path: Path) -> None:
    browser = RecordingBrowser(tmp_path / "browser")
    codex = Codex(tmp_path / "home", browser)
    with running_server(tmp_path / "srv") as server:
        subject = add_user(server)
        url = f"{server.issuer}/mcp"
        # The server entry `codex mcp add` writes, without its immediate login; with the file
        # store named, since `codex mcp logout` fails when there is no OS keyring to delete from.
        (codex.home / "config.toml").write_text(
            f'mcp_oauth_credentials_store = "file"\n\n[mcp_servers.demo]\nurl = "{url}"\n'
        )
        assert codex.auth_status("demo") == "not_logged_in"

        urls, output = await codex.logging_in(
            "mcp", "login", "demo", "--no-browser", "--oauth-client-registration", "dcr", paste=True
        )
        assert "Successfully logged in to MCP server 'demo'" in output
        assert len(urls) == 1
        assert browser.opened() == []
        assert codex.auth_status("demo") == "o_auth"
        info = await call_tool(codex, "demo", "get_user_info", {})
        assert info["structuredContent"]["sub"] == subject

        codex.run("mcp", "logout", "demo")
        assert codex.auth_status("demo") == "not_logged_in"


def test_codex_defaults_to_the_chatgpt_client_metadata_document(tmp_path: Path) -> None:
    """Without ``--oauth-client-registration dcr`` Codex sends its CIMD URL as client_id."""
    codex = Codex(tmp_path / "home", RecordingBrowser(tmp_path / "browser"))
    with running_server(tmp_path / "srv") as server:
        (codex.home / "config.toml").write_text(
            f'[mcp_servers.demo]\nurl = "{server.issuer}/mcp"\n'
        )
        with subprocess.Popen(
            codex.argv("mcp", "login", "demo", "--no-browser"),
            env=codex.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    if match := AUTHORIZE.match(line.strip()):
                        break
                else:
                    raise AssertionError("codex printed no authorization URL")
            finally:
                process.kill()
    assert query(match.group(1))["client_id"] == "https://chatgpt.com/oauth/codex/client.json"


async def test_codex_against_mixed_auth_calls_public_tools_before_any_login(
    tmp_path: Path,
) -> None:
    """A public tool works with no login; a protected one reports the challenge, not a login.

    Codex does not start a login from a tool call: it returns the challenge as an error result
    (``_meta["mcp/www_authenticate"]``) and the user runs ``codex mcp login``.
    """
    codex = Codex(tmp_path / "home", RecordingBrowser(tmp_path / "browser"))
    with running_server(tmp_path / "srv", OSTIARY_DEMO__MIXED_AUTH="true") as server:
        subject = add_user(server)
        url = f"{server.issuer}/mcp"
        (codex.home / "config.toml").write_text(
            f'mcp_oauth_credentials_store = "file"\n\n[mcp_servers.demo]\nurl = "{url}"\n'
        )
        echo = await call_tool(codex, "demo", "echo", {"text": "public"})
        assert echo["isError"] is False
        assert echo["structuredContent"] == {"result": "public"}

        refused = await call_tool(codex, "demo", "get_user_info", {})
        assert refused["isError"] is True
        [challenge] = refused["_meta"]["mcp/www_authenticate"]
        assert challenge.startswith("Bearer ")
        assert 'scope="mcp:read"' in challenge
        assert f'resource_metadata="{server.issuer}/.well-known/oauth-protected-resource/mcp"' in (
            challenge
        )

        await codex.logging_in(
            "mcp", "login", "demo", "--no-browser", "--oauth-client-registration", "dcr", paste=True
        )
        info = await call_tool(codex, "demo", "get_user_info", {})
        assert info["structuredContent"]["sub"] == subject
