"""``ostiary login/tools/call/whoami/logout`` against a real MCP server behind OAuth (uvicorn)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from typer.testing import CliRunner

from ostiary.client.cli import client_app, parse_arguments

from ._world import World, build_app

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[World]:
    port = _free_port()
    world = World.at(f"http://127.0.0.1:{port}")
    mcp = MCPServer("cli-test")

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    app = build_app(world, mcp.streamable_http_app(stateless_http=True, json_response=True))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield world
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user's browser: follows the authorization URL to the loopback redirect."""
    opened: list[str] = []

    def open_url(url: str, *args: object, **kwargs: object) -> bool:
        opened.append(url)

        def visit() -> None:
            with httpx.Client() as http:
                location = http.get(url).headers["location"]
                http.get(location)

        threading.Thread(target=visit, daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", open_url)
    return opened


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(client_app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_login_then_tools_and_call_reuse_the_stored_tokens(
    served: World, browser: list[str], tmp_path: Path
) -> None:
    url = f"{served.origin}/mcp"
    store = ("--token-dir", str(tmp_path))

    code, out = invoke("login", url, *store)
    assert code == 0, out
    assert out.splitlines()[-1] == f"Logged in to {url} via {served.origin}/as1 (scope: (none))"

    code, out = invoke("tools", url, *store)
    assert code == 0, out
    assert "echo" in out
    assert "Echo the text back." in out

    code, out = invoke("call", url, "echo", "text=hello", *store)
    assert code == 0, out
    assert '"text": "hello"' in out

    assert len(served.authorize_requests) == 1  # tokens survived between commands
    code, out = invoke("whoami", *store)
    assert code == 0
    assert url in out

    code, out = invoke("logout", url, *store)
    assert (code, out) == (0, f"Logged out of {url} (revoked).\n")
    assert [r["token_type_hint"] for r in served.revocations] == ["refresh_token"]
    assert served.refresh == {}
    assert list(tmp_path.glob("*.json")) == []


def test_revoked_refresh_token_leads_to_a_clean_new_login(
    served: World, browser: list[str], tmp_path: Path
) -> None:
    url = f"{served.origin}/mcp"
    assert invoke("login", url, "--token-dir", str(tmp_path))[0] == 0
    served.revoke_all()

    code, out = invoke("call", url, "echo", "text=again", "--token-dir", str(tmp_path))

    assert code == 0, out
    assert len(browser) == 2
    assert [f["grant_type"] for f in served.token_requests] == [
        "authorization_code",
        "refresh_token",
        "authorization_code",
    ]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            "no_pkce",
            "does not advertise PKCE S256 (code_challenge_methods_supported); "
            "refusing to authorize",
        ),
        ("wrong_iss", "authorization response came from issuer 'https://evil.example.com'"),
        ("html_prm", "not JSON"),
        ("bad_issuer", "names issuer 'https://evil.example.com', expected exactly"),
        ("malformed", "token_endpoint: Input should be a valid string"),
        ("redirect", "oauth-protected-resource/mcp: HTTP 302"),
    ],
)
def test_bad_servers_end_in_one_error_line(
    served: World, browser: list[str], tmp_path: Path, setup: str, expected: str
) -> None:
    if setup == "no_pkce":
        served.pkce_methods = None
    elif setup == "wrong_iss":
        served.iss_mode = "wrong"
    elif setup == "html_prm":
        served.prm_html = True
    elif setup == "malformed":
        served.as_malformed = True
    elif setup == "redirect":
        served.prm_redirect = "https://evil.example.com/.well-known/oauth-protected-resource"
    else:
        served.metadata_issuer = "https://evil.example.com"

    code, out = invoke("tools", f"{served.origin}/mcp", "--token-dir", str(tmp_path))

    assert code == 1
    lines = out.strip().splitlines()
    assert lines[-1].startswith("error: ")
    assert expected in out
    assert "Traceback" not in out


def test_unreachable_server_is_one_error_line(tmp_path: Path) -> None:
    port = _free_port()
    code, out = invoke("tools", f"http://127.0.0.1:{port}/mcp", "--token-dir", str(tmp_path))
    assert code == 1
    assert out.startswith("error: cannot connect: ")
    assert len(out.strip().splitlines()) == 1


def test_unknown_server_name(tmp_path: Path) -> None:
    config = tmp_path / "mcp_config.json"
    config.write_text('{"servers": []}')
    code, out = invoke("tools", "nope", "--config", str(config))
    assert (code, out) == (1, f"error: no server named 'nope' in {config}\n")


def test_logout_when_not_logged_in(tmp_path: Path) -> None:
    assert invoke("logout", "--token-dir", str(tmp_path)) == (1, "error: not logged in anywhere\n")


def test_whoami_when_not_logged_in(tmp_path: Path) -> None:
    assert invoke("whoami", "--token-dir", str(tmp_path)) == (0, "Not logged in to any server.\n")


def test_arguments_are_json_when_they_parse() -> None:
    assert parse_arguments(["a=1", "b=x y", "c=[1, 2]", "d=true", "e="]) == {
        "a": 1,
        "b": "x y",
        "c": [1, 2],
        "d": True,
        "e": "",
    }


STDIO_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-test")


@server.tool()
def shout(text: str) -> str:
    \"\"\"Upper-case the text.\"\"\"
    return text.upper()


server.run()
"""


def test_stdio_servers_from_the_config_need_no_oauth(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(STDIO_SERVER)
    config = tmp_path / "mcp_config.json"
    entry = {"name": "local", "transport": "stdio", "command": [sys.executable, str(script)]}
    config.write_text(json.dumps({"servers": [entry]}))

    code, out = invoke("call", "local", "shout", "text=hey", "--config", str(config))
    assert code == 0, out
    assert '"text": "HEY"' in out

    code, out = invoke("login", "local", "--config", str(config))
    assert (code, out) == (
        1,
        "error: server 'local' uses stdio: it takes credentials from its environment, "
        "there is nothing to log in to\n",
    )
