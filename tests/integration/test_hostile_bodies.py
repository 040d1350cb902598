"""Issue 10 §3, authorization server side: hostile request bodies get a 4xx, never a 500.

The outside fuzzer's findings, each pinned exactly, on every storage (memory, SQLite,
PostgreSQL): a lone UTF-16 surrogate escape in registration metadata (POST and RFC 7592 PUT)
and JSON nested a thousand deep are 400 ``invalid_request`` from the one bounded JSON reader
(:mod:`ostiary.jsonbody`) and store nothing; a client that disconnects mid-body is logged at
INFO without a traceback, never as an unexpected ERROR anyone could flood the log with.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url
from tests.helpers.context import build_context
from tests.helpers.hostile import disconnect_mid_body
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, USERNAME, Clock
from tests.integration.test_hostile_helpers import assert_oauth_error, guard, snapshot

SURROGATE = "request body contains an unpaired UTF-16 surrogate"
TOO_DEEP = "request body nests arrays and objects more than 64 levels deep"
DISCONNECTED = "the client disconnected before the request body was complete"
JSON = {"content-type": "application/json"}


@dataclass
class Server:
    app: ASGIApp
    as_: AS


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def server(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[Server]:
    storage: dict[str, Any] = {
        "memory": {"url": "memory://"},
        "sqlite": {"url": f"sqlite:///{tmp_path}/as.db"},
    }.get(request.param) or {"url": postgres_url(), "tenant": f"t-{uuid.uuid4().hex}"}
    settings = settings_factory(issuer=ISSUER, storage=storage)
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    await ctx.storage.save_user(
        await new_user(settings.storage.tenant, USERNAME, PASSWORD, clock(), hashing=INSECURE_TEST)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Server(app, guard(AS(http, ctx, clock, settings)))
    await ctx.storage.close()


def _metadata(**extra: Any) -> dict[str, Any]:
    return {
        "client_name": "Test Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        **extra,
    }


def _no_error_logs(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.levelname, r.getMessage()) for r in bad]


@pytest.mark.parametrize(
    "body",
    [
        b'{"client_name": "\\ud800", "redirect_uris": ["http://127.0.0.1:9999/callback"]}',
        b'{"redirect_uris": ["http://127.0.0.1:9999/callback"], "contacts": ["a\\udc00"]}',
    ],
)
async def test_lone_surrogate_in_registration(
    server: Server, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    response = await server.as_.http.post("/register", content=body, headers=JSON)
    assert_oauth_error(response, 400, "invalid_request", SURROGATE)
    assert (await snapshot(server.as_)).stats.clients == 0
    _no_error_logs(caplog)


async def test_lone_surrogate_client_id_in_a_registration_update(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    registered = await server.as_.register()
    before = await snapshot(server.as_)
    body = (
        b'{"client_id": "\\ud800", "client_name": "x", '
        b'"redirect_uris": ["http://127.0.0.1:9999/callback"]}'
    )
    response = await server.as_.http.put(
        registered["registration_client_uri"],
        content=body,
        headers={**JSON, "authorization": f"Bearer {registered['registration_access_token']}"},
    )
    assert_oauth_error(response, 400, "invalid_request", SURROGATE)
    assert await snapshot(server.as_) == before
    _no_error_logs(caplog)


async def test_registration_nested_a_thousand_deep(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"client_name": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = await server.as_.http.post("/register", content=body, headers=JSON)
    assert_oauth_error(response, 400, "invalid_request", TOO_DEEP)
    assert (await snapshot(server.as_)).stats.clients == 0
    _no_error_logs(caplog)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/token", b"application/x-www-form-urlencoded"),
        ("/revoke", b"application/x-www-form-urlencoded"),
        ("/introspect", b"application/x-www-form-urlencoded"),
        ("/register", b"application/json"),
    ],
)
async def test_client_disconnect_mid_body_is_not_an_error(
    server: Server, path: str, content_type: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = await disconnect_mid_body(server.app, path, content_type)
    assert sent[0]["status"] == 400  # written to no one; what matters is the log
    assert DISCONNECTED.encode() in sent[1]["body"]
    _no_error_logs(caplog)
    infos = [r for r in caplog.records if "client disconnected mid-body" in r.getMessage()]
    assert [r.levelno for r in infos] == [logging.INFO]


@pytest.mark.parametrize("path", ["/authorize", "/logout", "/account/revoke"])
async def test_client_disconnect_mid_form_on_the_pages(
    server: Server, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = await disconnect_mid_body(server.app, path, b"application/x-www-form-urlencoded")
    assert sent[0]["status"] < 500
    _no_error_logs(caplog)
