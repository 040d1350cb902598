"""StatelessMethods (MCP streamable HTTP on a stateless endpoint; RFC 9110 §15.5.6) and the
client address the per-address bounds count."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from ostiary.resource.concurrency import client_address
from ostiary.resource.stateless import StatelessMethods

BODY = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {
        "code": -32000,
        "message": "Method not allowed: this MCP endpoint is stateless; send each message with "
        "POST (no GET stream, no session to delete).",
    },
}


async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["method"].encode()})


def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=StatelessMethods(_endpoint))
    return httpx.AsyncClient(transport=transport, base_url="http://rs.example")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_are_405_allow_post(method: str) -> None:
    async with _client() as client:
        response = await client.request(method, "/mcp", headers={"Authorization": "Bearer x"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == BODY


async def test_head_is_405_without_a_body() -> None:
    async with _client() as client:
        response = await client.head("/mcp")
    assert (response.status_code, response.content) == (405, b"")
    assert response.headers["content-length"] == str(len(json.dumps(BODY, separators=(",", ":"))))


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
async def test_post_and_options_reach_the_endpoint(method: str) -> None:
    async with _client() as client:
        response = await client.request(method, "/mcp")
    assert (response.status_code, response.text) == (200, method)


async def test_a_non_http_scope_passes_through() -> None:
    seen: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: object) -> None:
        raise AssertionError("nothing is sent")

    await StatelessMethods(lifespan_app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("headers", "client", "trust", "expected"),
    [
        ([], ("192.0.2.1", 5000), False, "192.0.2.1"),
        ([(b"x-forwarded-for", b"203.0.113.9, 10.0.0.1")], ("10.0.0.1", 1), True, "203.0.113.9"),
        ([(b"x-forwarded-for", b"203.0.113.9")], ("10.0.0.1", 1), False, "10.0.0.1"),
        ([(b"x-forwarded-for", b"")], ("10.0.0.1", 1), True, "10.0.0.1"),
        ([], None, True, "unknown"),
    ],
)
def test_client_address_is_the_peer_or_the_first_forwarded_entry_behind_a_proxy(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    trust: bool,
    expected: str,
) -> None:
    scope: Scope = {"type": "http", "headers": headers, "client": client}
    assert client_address(scope, trust) == expected
