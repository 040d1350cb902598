"""Hostile input against the authorization server on PostgreSQL.

PostgreSQL refuses a NUL character in text, so an identifier carrying one (``%00`` in a query,
a form, a path, a Basic header or a JSON string) must be turned away as bad input before it
reaches storage, not surface as a storage failure (500/503). The main replay and reuse rules
(and the same-successor answer to a refresh retried within the grace window) are checked
here on PostgreSQL too, alone and with Redis for the ephemeral records. Each test
works in its own tenant of the shared database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url, redis_url
from tests.helpers.context import build_context
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, USERNAME, Clock
from tests.integration.test_hostile_helpers import (
    assert_error_page,
    assert_oauth_error,
    code_for,
    guard,
    snapshot,
    tokens_for,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres", pytest.param("postgres+redis", marks=pytest.mark.redis)])
async def server(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[AS]:
    storage = {"url": postgres_url(), "tenant": f"t-{uuid.uuid4().hex}"}
    if request.param == "postgres+redis":
        storage["redis_url"] = redis_url()
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
        yield guard(AS(http, ctx, clock, settings))
    await ctx.storage.close()


async def test_nul_in_the_authorization_request(server: AS) -> None:
    before = await snapshot(server)
    response = await server.http.get(f"{ISSUER}/authorize?client_id=a%00b&response_type=code")
    assert_error_page(response, "invalid_request", "parameter client_id contains a NUL character")
    assert await snapshot(server) == before


@pytest.mark.parametrize(
    ("form", "description"),
    [
        (
            {"grant_type": "authorization_code", "code": "x", "client_id": "a\x00b"},
            "parameter client_id contains a NUL character",
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": "x\x00", "client_id": "a"},
            "parameter refresh_token contains a NUL character",
        ),
        (
            {"grant_type": "authorization_code\x00", "client_id": "a"},
            "parameter grant_type contains a NUL character",
        ),
    ],
)
async def test_nul_in_a_token_request(server: AS, form: dict[str, str], description: str) -> None:
    before = await snapshot(server)
    response = await server.http.post("/token", data=form)
    assert_oauth_error(response, 400, "invalid_request", description)
    assert await snapshot(server) == before


async def test_nul_in_a_basic_client_id(server: AS) -> None:
    """``a%00b:s`` in the Basic header decodes to a client id with NUL: an unknown client."""
    response = await server.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"authorization": "Basic YSUwMGI6cw=="},
    )
    assert_oauth_error(
        response, 401, "invalid_client", "unknown client", www_authenticate='Basic realm="ostiary"'
    )


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
async def test_nul_in_revocation_and_introspection(server: AS, path: str) -> None:
    response = await server.http.post(path, data={"token": "x", "client_id": "a\x00"})
    assert_oauth_error(
        response, 400, "invalid_request", "parameter client_id contains a NUL character"
    )


@pytest.mark.parametrize(
    "metadata",
    [
        {"client_name": "a\x00b"},
        {"contacts": ["ops@example.com\x00"]},
        {"redirect_uris": ["http://127.0.0.1/cb\x00"]},
        {"software_id\x00": "x"},
    ],
)
async def test_nul_in_registration_metadata(server: AS, metadata: dict[str, object]) -> None:
    body = {
        "client_name": "ok",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    response = await server.http.post("/register", json=body)
    assert_oauth_error(response, 400, "invalid_request", "request body contains a NUL character")
    assert (await snapshot(server)).stats.clients == 0


async def test_nul_in_path_parameters(server: AS) -> None:
    management = await server.http.get(
        f"{ISSUER}/register/a%00b", headers={"authorization": "Bearer x"}
    )
    assert_oauth_error(
        management,
        401,
        "invalid_token",
        "the registration access token is invalid",
        www_authenticate='Bearer error="invalid_token"',
    )
    interaction = await server.http.get(f"{ISSUER}/interaction/a%00b")
    assert_error_page(
        interaction, "invalid_request", "This sign-in request expired or was already completed."
    )


async def test_nul_in_the_login_form(server: AS) -> None:
    from tests.helpers.browserless import parse_form

    client = await server.register()
    start = await server.http.get(server.authorize_url(client["client_id"], "a" * 43))
    page = await server.http.get(start.headers["location"])
    form = parse_form(page.text)
    response = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": "alice\x00", "password": "x"},
    )
    assert_error_page(response, "invalid_request", "parameter username contains a NUL character")


async def test_code_replay_on_postgres(server: AS) -> None:
    client = await server.register()
    code, verifier = await code_for(server, client["client_id"])
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client["client_id"],
    }
    assert (await server.http.post("/token", data=form)).status_code == 200
    replay = await server.http.post("/token", data=form)
    assert_oauth_error(
        replay,
        400,
        "invalid_grant",
        "authorization code was already used; tokens issued from it are revoked",
    )
    stats = (await snapshot(server)).stats
    assert stats.live_grants == 0
    assert stats.live_access_tokens == 0
    assert stats.live_refresh_tokens == 0


async def test_refresh_reuse_on_postgres(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": client["client_id"],
    }
    assert (await server.http.post("/token", data=form)).status_code == 200
    server.clock.now += server.settings.tokens.refresh_grace_seconds + 1
    reuse = await server.http.post("/token", data=form)
    assert_oauth_error(
        reuse, 400, "invalid_grant", "refresh token was already used; the grant is revoked"
    )
    assert (await snapshot(server)).stats.live_grants == 0


async def test_refresh_retry_within_grace_gets_the_same_successor_on_postgres(
    server: AS,
) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": client["client_id"],
    }
    first = await server.http.post("/token", data=form)
    assert first.status_code == 200
    server.clock.now += server.settings.tokens.refresh_grace_seconds
    retry = await server.http.post("/token", data=form)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == first.json()["refresh_token"]
    stats = (await snapshot(server)).stats
    assert (stats.live_grants, stats.live_refresh_tokens) == (1, 1)
    # The client moved on: now the first token is two rotations old.
    form["refresh_token"] = first.json()["refresh_token"]
    assert (await server.http.post("/token", data=form)).status_code == 200
    form["refresh_token"] = tokens["refresh_token"]
    reuse = await server.http.post("/token", data=form)
    assert_oauth_error(
        reuse, 400, "invalid_grant", "refresh token was already used; the grant is revoked"
    )
    assert (await snapshot(server)).stats.live_grants == 0
