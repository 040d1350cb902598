"""Structured logs: ``server.log_format = json``, the request id, and no secret in any line.

A real ``ostiary serve`` writes its logs while a client registers, signs in through the pages,
exchanges a code, refreshes and calls a tool; then every line is read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.demo._support import PASSWORD, USERNAME, mcp_headers, obtain_token, rpc
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e


async def test_json_logs_carry_the_request_id_and_no_secret(tmp_path: Path) -> None:
    with running_server(tmp_path / "srv", OSTIARY_SERVER__LOG_FORMAT="json") as server:
        server.cli("users", "add", USERNAME, "--password", PASSWORD)
        resource = f"{server.issuer}/mcp"
        issued = await obtain_token(server.issuer, resource, scope="mcp:read offline_access")
        async with httpx.AsyncClient(timeout=30) as http:
            refreshed = await http.post(
                f"{server.issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": issued.refresh_token,
                    "client_id": issued.client_id,
                },
                headers={"X-Request-ID": "trace-42.a_b"},
            )
            forged = await http.get(
                f"{server.issuer}/health", headers={"X-Request-ID": "has spaces and\ttabs"}
            )
            called = await http.post(
                resource,
                json=rpc("tools/call", {"name": "get_user_info", "arguments": {}}),
                headers=mcp_headers(refreshed.json()["access_token"]),
            )
        log = (tmp_path / "srv" / "server.log").read_text()
    assert refreshed.status_code == 200
    assert refreshed.headers["x-request-id"] == "trace-42.a_b"
    assert forged.headers["x-request-id"] != "has spaces and\ttabs"
    assert len(forged.headers["x-request-id"]) == 16
    assert called.status_code == 200
    entries: list[dict[str, Any]] = []
    for line in log.splitlines():
        assert not line.startswith("INFO:"), f"a uvicorn text line in JSON mode: {line}"
        if line.startswith("{"):
            entries.append(json.loads(line))
    refresh_lines = [e for e in entries if e["request_id"] == "trace-42.a_b"]
    events = [e["audit"]["event"] for e in refresh_lines if "audit" in e]
    assert events == ["token.refreshed"]
    assert any(e["logger"] == "uvicorn.access" for e in refresh_lines)
    secrets = {
        "password": PASSWORD,
        "access token": issued.access_token,
        "refresh token": issued.refresh_token,
        "new refresh token": refreshed.json()["refresh_token"],
        "new access token": refreshed.json()["access_token"],
    }
    for name, secret in secrets.items():
        assert secret, name
        assert secret not in log, f"the {name} is in the log"
