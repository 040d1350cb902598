"""One address cannot take the server offline with requests it keeps open (issue 10 §3).

``ostiary serve`` bounds the requests in flight per client address
(``server.max_requests_per_address``). A client at 127.0.0.2 opens as many stalled requests
as the bound allows (headers announcing a body, 3 bytes of it, then nothing): its next
request gets 429 at once, while another address (127.0.0.1) still gets ``/health`` and a
token; once the stalled requests end, 127.0.0.2 is served again.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.demo._support import PASSWORD, USERNAME, obtain_token
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

LIMIT = 20


def _stalled(port: int) -> socket.socket:
    """A request from 127.0.0.2 whose body never finishes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
    sock.sendall(
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nabc"
    )
    return sock


async def test_stalled_requests_from_one_address_do_not_starve_the_others(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "srv", OSTIARY_SERVER__MAX_REQUESTS_PER_ADDRESS=str(LIMIT)
    ) as server:
        server.cli("users", "add", USERNAME, "--password", PASSWORD)
        port = int(server.issuer.rsplit(":", 1)[1])
        other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        stalled = [_stalled(port) for _ in range(LIMIT)]
        try:
            async with httpx.AsyncClient(transport=other, timeout=10) as flooder:
                for _ in range(50):  # wait until the server holds all of them
                    refused = await flooder.get(f"{server.issuer}/health")
                    if refused.status_code == 429:
                        break
            async with httpx.AsyncClient(timeout=10) as http:
                health = await http.get(f"{server.issuer}/health")
            issued = await obtain_token(server.issuer, f"{server.issuer}/mcp")
        finally:
            for sock in stalled:
                sock.close()
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"), timeout=10
        ) as flooder:
            for _ in range(50):
                again = await flooder.get(f"{server.issuer}/health")
                if again.status_code == 200:
                    break
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": "slow_down",
        "error_description": "Too many requests in flight from this address. Finish some, "
        "then retry.",
    }
    assert health.status_code == 200
    assert issued.access_token
    assert again.status_code == 200
