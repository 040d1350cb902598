"""``ostiary serve --workers N``: several processes on one port and one storage.

Each worker builds its own app (``ostiary.assembly.serving.worker_app``) from the issuer and bind
address the parent resolved; signing keys, the storage key, codes, sessions and refresh tokens
are shared through the storage, so a token or code made by one worker is good at the other.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.demo._support import PASSWORD, USERNAME, mcp_headers, obtain_token, rpc
from tests.e2e.server import OSTIARY, running_server

pytestmark = pytest.mark.e2e


async def test_two_workers_share_keys_codes_and_refresh_tokens(tmp_path: Path) -> None:
    with running_server(tmp_path / "srv", serve_args=["--workers", "2"]) as server:
        server.cli("users", "add", USERNAME, "--password", PASSWORD)
        resource = f"{server.issuer}/mcp"
        # Each flow on its own connections: the kernel hands them to either worker.
        issued = await asyncio.gather(*(obtain_token(server.issuer, resource) for _ in range(8)))
        calls = []
        for token in issued:
            async with httpx.AsyncClient(timeout=30) as http:
                calls.append(
                    await http.post(
                        resource,
                        json=rpc("tools/call", {"name": "get_user_info", "arguments": {}}),
                        headers=mcp_headers(token.access_token),
                    )
                )
        log = (tmp_path / "srv" / "server.log").read_text()
    assert log.count("Application startup complete") == 2, log
    assert "2 worker processes" in log
    assert len({t.access_token for t in issued}) == 8
    for call in calls:
        assert call.status_code == 200, call.text
        assert call.json()["result"]["structuredContent"]["username"] == USERNAME


def test_workers_on_memory_storage_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [*OSTIARY, "serve", "--workers", "2"],
        env={
            **os.environ,
            "OSTIARY_DEV__ENABLED": "true",
            "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
            "OSTIARY_STORAGE__URL": "memory://",
            "OSTIARY_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "memory:// storage is per process: use SQLite or PostgreSQL with --workers > 1"
        in " ".join((result.stdout + result.stderr).split())
    )
