"""Issue 10 §3, MCP side: no body makes protect_mcp_app (or the gateway) answer 500.

The fuzzer's finding: ``POST /mcp`` with JSON nested ~1000 deep raised ``RecursionError``
(500, traceback in the log) before any token check, on every server protected with
``protect_mcp_app``. Now every POST body is read by :mod:`ostiary.jsonbody` first: with a
token, a refused body is the JSON-RPC parse error the SDK gives (400, -32700); without one
it is the 401 challenge; a client that disconnects mid-body is logged at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.helpers.hostile import (
    READ_TOKEN,
    disconnect_mid_body,
    held_open,
    protected_app,
    serving,
    serving_gateway,
)

DEEP = (
    b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": ' + b"[" * 1000 + b"]" * 1000 + b"}"
)
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
BEARER = {**HEADERS, "authorization": f"Bearer {READ_TOKEN}"}


def parse_error(message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": message}}


@pytest.fixture(params=["strict", "mixed", "gateway"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "gateway":
        async with serving_gateway() as http:
            yield http
        return
    async with serving(protected_app(mixed_auth=request.param == "mixed")) as http:
        yield http


def _no_error_logs(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.levelname, r.getMessage()) for r in bad]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (DEEP, "Parse error: request body nests arrays and objects more than 64 levels deep"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
            b'"params": {"name": "echo", "arguments": {"text": "\\ud800"}}}',
            "Parse error: request body contains an unpaired UTF-16 surrogate",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
            b'"params": {"name": "echo", "name": "create_note", "arguments": {"text": "x"}}}',
            "Parse error: request body repeats a member name in one object",
        ),
        (b"{not json", "Parse error: request body is not valid JSON"),
    ],
)
async def test_refused_body_with_a_token_is_a_parse_error(
    client: httpx.AsyncClient, body: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post("/mcp", content=body, headers=BEARER)
    assert response.status_code == 400
    assert response.json() == parse_error(message)
    _no_error_logs(caplog)


async def test_deep_body_without_a_token_is_the_challenge(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the fix, mixed auth parsed the tokenless body with json.loads: RecursionError."""
    response = await client.post("/mcp", content=DEEP, headers=HEADERS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    _no_error_logs(caplog)


async def test_a_well_formed_call_still_works(client: httpx.AsyncClient) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi \U0001f600"}},
    }
    response = await client.post("/mcp", json=body, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["content"][0]["text"] == "hi \U0001f600"


@pytest.mark.parametrize("token", [READ_TOKEN, None])
async def test_client_disconnect_mid_body_is_not_an_error(
    token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = protected_app(mixed_auth=True)
    headers = () if token is None else ((b"authorization", f"Bearer {token}".encode()),)
    async with held_open(app.router.lifespan_context(app)):
        sent = await disconnect_mid_body(
            app, "/mcp", b"application/json", headers=headers, host=b"127.0.0.1:8765"
        )
    assert sent[0]["status"] == 400  # written to no one; what matters is the log
    _no_error_logs(caplog)
    infos = [r for r in caplog.records if getattr(r, "detail", None)]
    assert [(r.levelno, r.detail) for r in infos] == [  # type: ignore[attr-defined]
        (logging.INFO, "client disconnected while sending the body")
    ]
