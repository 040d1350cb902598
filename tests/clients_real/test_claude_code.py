"""Claude Code (npm ``@anthropic-ai/claude-code``, a native binary) as an MCP OAuth client.

``claude mcp add --transport http`` records the server; ``claude mcp login <name>
--no-browser`` prints the authorization URL and reads the pasted redirect back, and refuses to
run without a terminal, so the test gives it a pseudo-terminal. ``claude mcp list`` then
health-checks the server with the stored token. None of this needs an Anthropic account.

Claude Code's own client_id is a Client ID Metadata Document on claude.ai, which the server
must fetch from the internet. The tests have no internet, so one login test pre-registers a
client (``ostiary clients add``) and hands it over with ``--client-id`` and ``--callback-port``,
and another turns CIMD off on the server, after which Claude Code registers by DCR.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clients_real._support import add_user, log_in, node_env, npm_entry
from tests.e2e.server import RunningServer, free_port, running_server

pytestmark = pytest.mark.e2e

VERSION = "2.1.337"  # pinned in scripts/install-tools.sh
# The URL is printed twice, inside an OSC 8 hyperlink and as its text; ANSI codes around both.
AUTHORIZE = re.compile(r"(http://[^\s\x07\x1b]+/authorize\?[^\s\x07\x1b]+)")
ESCAPES = re.compile(r"\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A process on a pseudo-terminal: read until a pattern shows up, type a line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the other side closed: the process has exited
            return False
        self.output += data.decode(errors="replace")
        return bool(data)

    def expect(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := pattern.search(self.output):
                return match
            if not self._read(0.5):
                break
        raise AssertionError(f"{pattern.pattern!r} not seen in:\n{self.output}")

    def send_line(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r")

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.5)
        return self.process.wait(1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def text(self) -> str:
        return ESCAPES.sub("", self.output)


class Claude:
    def __init__(self, home: Path) -> None:
        self.binary = npm_entry("@anthropic-ai/claude-code-linux-x64", "claude")
        self.home = home
        self.env = node_env(home, CLAUDE_CONFIG_DIR=str(home / ".claude"))

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, f"claude {args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def login(self, name: str, *, paste: bool = True) -> tuple[str, str]:
        """``claude mcp login --no-browser`` on a terminal; returns the URL and what it said."""
        terminal = Terminal(
            [str(self.binary), "mcp", "login", name, "--no-browser"], self.env, self.home
        )
        try:
            url = terminal.expect(AUTHORIZE).group(1)
            if paste:
                location = asyncio.run(log_in(url, deliver=False))
                terminal.send_line(location)
                assert terminal.wait() == 0, terminal.text()
            return url, terminal.text()
        finally:
            terminal.close()


def status_line(listing: str, name: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(f"{name}:"))


def add_claude_client(server: RunningServer, port: int) -> str:
    # Claude Code redirects to http://localhost:<callback port>/callback.
    client = server.add_client(
        "--name", "Claude Code", "--redirect-uri", f"http://localhost:{port}/callback"
    )
    return client["client_id"]


def test_claude_code_logs_in_with_a_preregistered_client_and_connects(tmp_path: Path) -> None:
    claude = Claude(tmp_path / "home")
    assert VERSION in claude.run("--version")
    with running_server(tmp_path / "srv") as server:
        add_user(server)
        port = free_port()
        client_id = add_claude_client(server, port)
        url = f"{server.issuer}/mcp"
        claude.run(
            "mcp", "add", "--transport", "http", "--scope", "user",
            "--client-id", client_id, "--callback-port", str(port), "demo", url,
        )  # fmt: skip
        assert "Needs authentication" in status_line(claude.run("mcp", "list"), "demo")

        authorize_url, said = claude.login("demo")
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["client_id"] == client_id
        assert query["redirect_uri"] == f"http://localhost:{port}/callback"
        assert query["resource"] == url
        assert query["scope"].split() == ["mcp:read", "mcp:write", "offline_access"]
        assert "demo" in said

        assert "Connected" in status_line(claude.run("mcp", "list"), "demo")
        assert "Connected" in claude.run("mcp", "get", "demo")


def test_claude_code_defaults_to_its_claude_ai_client_metadata_document(tmp_path: Path) -> None:
    claude = Claude(tmp_path / "home")
    with running_server(tmp_path / "srv") as server:
        claude.run(
            "mcp", "add", "--transport", "http", "--scope", "user", "demo", f"{server.issuer}/mcp"
        )
        authorize_url, _ = claude.login("demo", paste=False)
    client_id = parse_qs(urlsplit(authorize_url).query)["client_id"][0]
    assert client_id == "https://claude.ai/oauth/claude-code-client-metadata"


def test_claude_code_connects_to_mixed_auth_without_a_login(tmp_path: Path) -> None:
    """Mixed auth: no challenge at connect, so Claude Code connects with no login at all.

    Calling a tool from Claude Code needs a model (an Anthropic account), so whether it starts
    a login on get_user_info's per-tool challenge is not tested here.
    """
    claude = Claude(tmp_path / "home")
    with running_server(tmp_path / "srv", OSTIARY_DEMO__MIXED_AUTH="true") as server:
        url = f"{server.issuer}/mcp"
        claude.run("mcp", "add", "--transport", "http", "--scope", "user", "demo", url)
        assert "Connected" in status_line(claude.run("mcp", "list"), "demo")


def test_claude_code_registers_by_dcr_when_the_server_offers_no_cimd(tmp_path: Path) -> None:
    """With ``features.client_id_metadata_documents`` off, Claude Code registers (RFC 7591)."""
    claude = Claude(tmp_path / "home")
    with running_server(
        tmp_path / "srv", OSTIARY_FEATURES__CLIENT_ID_METADATA_DOCUMENTS="false"
    ) as server:
        add_user(server)
        url = f"{server.issuer}/mcp"
        claude.run("mcp", "add", "--transport", "http", "--scope", "user", "demo", url)
        authorize_url, _ = claude.login("demo")
        client_id = parse_qs(urlsplit(authorize_url).query)["client_id"][0]
        assert not client_id.startswith("https://")  # issued by our /register
        assert "Connected" in status_line(claude.run("mcp", "list"), "demo")
