"""The official MCP conformance suite's authorization-server scenarios against ``ostiary serve``.

Both scenarios (``authorization-server-metadata-endpoint`` and ``authorization-code-grant``)
run as the suite's ``authorization`` mode against a real server process. The code-grant
scenario prints an authorization URL and waits for its callback; the test completes that URL
through the real login and consent forms, like a user would, and hands the redirect back.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests._services import conformance_cli
from tests.e2e.server import free_port, running_server
from tests.helpers.browserless import authorize

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

USERNAME = "conformance"
PASSWORD = "conformance-password"


async def _complete(url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        location = await authorize(http, url, username=USERNAME, password=PASSWORD)
        callback = await http.get(location)
        assert callback.status_code < 500, callback.text


def test_authorization_server_scenarios_pass(tmp_path: Path) -> None:
    suite = conformance_cli()
    callback_port = free_port()
    with running_server(tmp_path / "as") as server:
        server.add_user(USERNAME, PASSWORD)
        client = server.add_client(
            "--name",
            "MCP conformance suite",
            "--redirect-uri",
            f"http://127.0.0.1:{callback_port}/callback",
        )
        process = subprocess.Popen(
            [
                *suite,
                "authorization",
                "--url",
                server.issuer,
                "--client-id",
                client["client_id"],
                "--resource",
                f"{server.issuer}/mcp",
                "--port",
                str(callback_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        errors: list[BaseException] = []

        def drive(url: str) -> None:
            try:
                asyncio.run(_complete(url))
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        assert process.stdout is not None
        drivers = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(f"{server.issuer}/authorize?"):
                thread = threading.Thread(target=drive, args=(line.strip(),))
                thread.start()
                drivers.append(thread)
        code = process.wait(timeout=120)
        process.stdout.close()
        for thread in drivers:
            thread.join(30)
    output = "\n".join(lines)
    assert not errors, f"driving the login failed: {errors!r}\n{output}"
    assert len(drivers) == 1, output
    assert code == 0, output
    summary = output.split("=== SUMMARY ===", 1)[1].split()
    assert " ".join(summary) == (
        "✓ authorization-server-metadata-endpoint: 2 passed, 0 failed "
        "✓ authorization-code-grant: 1 passed, 0 failed "
        "Total: 3 passed, 0 failed"
    ), output
