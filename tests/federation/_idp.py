"""A real OpenID Provider (panva's oidc-provider, tests/federation/idp/idp.mjs) on loopback.

Started once per test session with Node 22 from ``.tools``; skipped locally (failed in CI)
when Node or oidc-provider is missing. Its clients redirect to ostiary's callback.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._services import TOOLS, node22, unavailable
from tests.e2e.server import free_port

SCRIPT = Path(__file__).parent / "idp" / "idp.mjs"
ISSUER = "http://127.0.0.1:8000"
CALLBACK = f"{ISSUER}/federation/idp/callback"
CLIENT_ID = "ostiary"
CLIENT_SECRET = "ostiary-upstream-secret"
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "other-app-secret"


@dataclass(frozen=True)
class RunningIdp:
    issuer: str

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


@contextmanager
def start_idp(
    log_path: Path, callback: str = CALLBACK, port: int | None = None
) -> Iterator[RunningIdp]:
    """Run the IdP until the generator is closed; its clients redirect to ``callback``."""
    node = node22()
    if not (TOOLS / "node_modules" / "oidc-provider" / "package.json").exists():
        unavailable("oidc-provider not installed (run scripts/install-tools.sh .tools)")
    port = port or free_port()
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [callback]},
        {
            "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_CLIENT_SECRET,
            "redirect_uris": [callback],
        },
    ]
    env = {
        **os.environ,
        "IDP_PORT": str(port),
        "IDP_CLIENTS": json.dumps(clients),
        "IDP_NODE_MODULES": str(TOOLS / "node_modules"),
    }
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(node), str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(issuer, process, log_path)
        yield RunningIdp(issuer)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_ready(issuer: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("oidc-provider exited: " + log_path.read_text())
        try:
            url = f"{issuer}/.well-known/openid-configuration"
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("oidc-provider did not start: " + log_path.read_text())
