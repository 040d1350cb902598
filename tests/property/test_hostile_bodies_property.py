"""Issue 10 §3: no request body makes any endpoint answer 5xx, leak a traceback or log ERROR.

Hypothesis throws deeply nested, surrogate-bearing, huge, repeated-name, non-object and
plain garbage bodies, as JSON and as urlencoded forms (and under the wrong content type), at
every endpoint that reads a body: the authorization server's JSON and form endpoints (on
memory and SQLite storage), ``protect_mcp_app`` around a small ``MCPServer`` (strict and
mixed auth, with and without a token) and the HTTP gateway. All run in-process (httpx
``ASGITransport``) on one event loop per module, with their lifespans held open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.helpers.context import build_context
from tests.helpers.hostile import (
    READ_TOKEN,
    WRITE_TOKEN,
    protected_app,
    serving,
    serving_gateway,
)

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:9999/callback"
AS_LIMIT = 64 * 1024
MCP_LIMIT = 4 * 1024 * 1024

# --- bodies ------------------------------------------------------------------------------------


def _nest(depth: int, opener: str, closed: bool, inner: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    return (opener * depth + inner + (closer * depth if closed else "")).encode()


deep = st.builds(
    _nest,
    st.sampled_from([63, 64, 65, 200, 1000, 3000, 20000]) | st.integers(50, 5000),
    st.sampled_from(["[", '{"a":']),
    st.booleans(),
    st.sampled_from(["1", '"x"', "{}", "[]", ""]),
)


def _with_escape(key: bool, code: int, second: int | None, rpc: bool) -> bytes:
    escape = f"\\u{code:04x}" + ("" if second is None else f"\\u{second:04x}")
    member = f'"{escape}": 1' if key else f'"text": "a{escape}b"'
    if rpc:
        return (
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
            f'"params": {{"name": "echo", "arguments": {{{member}}}}}}}'
        ).encode()
    return f'{{"client_name": "x", "redirect_uris": ["{REDIRECT}"], {member}}}'.encode()


surrogates = st.builds(
    _with_escape,
    st.booleans(),
    st.integers(0xD800, 0xDFFF),
    st.none() | st.integers(0, 0xFFFF),
    st.booleans(),
)


def _huge(size: int, json_body: bool) -> bytes:
    return b'{"a": "' + b"x" * size + b'"}' if json_body else b"a=" + b"x" * size


huge = st.builds(_huge, st.sampled_from([AS_LIMIT, MCP_LIMIT]), st.booleans())


def _duplicate(key: str, nested: bool, rpc: bool) -> bytes:
    pair = f'"{key}": "echo", "{key}": "create_note"'
    if rpc:
        inner = f'{{"name": "echo", "arguments": {{"text": "x"}}, {pair}}}' if nested else "{}"
        head = '"jsonrpc": "2.0", "id": 1, "method": "tools/call"'
        return f'{{{head}, "params": {inner}{"" if nested else ", " + pair}}}'.encode()
    if nested:
        return f'{{"redirect_uris": ["{REDIRECT}"], "jwks": {{{pair}}}}}'.encode()
    return f'{{"redirect_uris": ["{REDIRECT}"], {pair}}}'.encode()


duplicates = st.builds(
    _duplicate,
    st.sampled_from(["name", "client_name", "method", "id"]),
    st.booleans(),
    st.booleans(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)
non_objects = json_values.filter(lambda v: not isinstance(v, dict)).map(
    lambda v: json.dumps(v).encode()
)
garbage = st.binary(max_size=300) | st.sampled_from(
    [b"", b"NaN", b'{"a": Infinity}', b"\xef\xbb\xbf{}", b'{"a": 1} x', b"1" * 5000, b"\x00"]
)
form_parts = st.binary(max_size=20).map(quote_from_bytes) | st.sampled_from(
    ["%ED%A0%80", "%00", "%zz", "%", "a[b][c]", "%ED%B0%80", "%F0%9F%98%80"]
)
forms = st.lists(st.tuples(form_parts, form_parts), max_size=8).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode()
) | st.lists(st.sampled_from(["grant_type=x", "token=a", "token=b", "client_id=c"])).map(
    lambda parts: "&".join(parts).encode()
)
bodies = st.one_of(deep, surrogates, huge, duplicates, non_objects, garbage, forms)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", None]
)

# --- the apps, held open for the module -------------------------------------------------------


@dataclass
class Harness:
    runner: asyncio.Runner
    clients: dict[str, httpx.AsyncClient]
    registration: dict[str, Any]

    def send(
        self, target: str, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        request = self.clients[target].request(method, path, content=body, headers=headers)
        return self.runner.run(request)


async def _open(
    stack: contextlib.AsyncExitStack, data_dir: Any
) -> tuple[dict[str, httpx.AsyncClient], dict[str, Any]]:
    clients: dict[str, httpx.AsyncClient] = {}
    for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{data_dir}/as.db")):
        config = Settings(
            _env_file=None,
            issuer=ISSUER,
            data_dir=data_dir / name,
            dev={"enabled": True},
            storage={"url": url},
            security={"rate_limit_per_minute": 10**9},
        )
        ctx = build_context(config, open_storage(config))
        await startup(ctx)
        stack.push_async_callback(ctx.storage.close)
        transport = httpx.ASGITransport(app=create_authorization_server(config, context=ctx))
        clients[name] = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=ISSUER)
        )
    clients["strict"] = await stack.enter_async_context(serving(protected_app(mixed_auth=False)))
    clients["mixed"] = await stack.enter_async_context(serving(protected_app(mixed_auth=True)))
    clients["gateway"] = await stack.enter_async_context(serving_gateway())
    registered = await clients["sqlite"].post(
        "/register",
        json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
    )
    assert registered.status_code == 201, registered.text
    return clients, registered.json()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    runner = asyncio.Runner()
    stack = contextlib.AsyncExitStack()
    clients, registration = runner.run(_open(stack, tmp_path_factory.mktemp("hostile")))
    try:
        yield Harness(runner, clients, registration)
    finally:
        runner.run(stack.aclose())
        runner.close()


def _check(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    assert b"Traceback" not in response.content, where
    assert b"Error:" not in response.content or b"Parse error:" in response.content, where
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    caplog.clear()
    assert not bad, [(r.name, r.levelname, r.getMessage()[:200]) for r in bad]


def _headers(content_type: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {} if content_type is None else {"content-type": content_type}
    return {**headers, **(extra or {})}


AS_ENDPOINTS = [
    ("POST", "/token"),
    ("POST", "/revoke"),
    ("POST", "/introspect"),
    ("POST", "/register"),
    ("PUT", "registration"),
    ("POST", "/authorize"),
    ("POST", "/interaction/nope/login"),
    ("POST", "/interaction/nope/code"),
    ("POST", "/interaction/nope/consent"),
    ("POST", "/logout"),
    ("POST", "/account/revoke"),
]
HYPOTHESIS = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HYPOTHESIS
@given(
    storage=st.sampled_from(["memory", "sqlite"]),
    endpoint=st.sampled_from(AS_ENDPOINTS),
    body=bodies,
    content_type=content_types,
)
def test_authorization_server_endpoints(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    storage: str,
    endpoint: tuple[str, str],
    body: bytes,
    content_type: str | None,
) -> None:
    method, path = endpoint
    extra: dict[str, str] = {}
    if path == "registration":
        registration = harness.registration
        path = registration["registration_client_uri"].removeprefix(ISSUER)
        extra["authorization"] = f"Bearer {registration['registration_access_token']}"
        storage = "sqlite"
    response = harness.send(storage, method, path, body, _headers(content_type, extra))
    _check(response, caplog)


@HYPOTHESIS
@given(
    target=st.sampled_from(["strict", "mixed", "gateway"]),
    token=st.sampled_from([None, READ_TOKEN, WRITE_TOKEN]),
    body=bodies,
    content_type=st.sampled_from(["application/json", "application/json", "text/plain", None]),
)
def test_mcp_endpoints(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    target: str,
    token: str | None,
    body: bytes,
    content_type: str | None,
) -> None:
    extra = {"accept": "application/json, text/event-stream"}
    if token is not None:
        extra["authorization"] = f"Bearer {token}"
    response = harness.send(target, "POST", "/mcp", body, _headers(content_type, extra))
    _check(response, caplog)
