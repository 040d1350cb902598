"""Racing requests through the whole app: nothing single-use can be spent twice.

DESIGN "Bad input": no code or refresh token can be spent twice, even under concurrent
requests. The storage contract suite proves the primitives; these tests fire real concurrent
HTTP requests at the endpoints on memory, SQLite and PostgreSQL, each also with Redis.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from ostiary.core.context import ServerContext
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.secrets import hash_secret
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url, redis_url
from tests.e2e.server import free_port, running_server
from tests.helpers.browserless import authorize, parse_form
from tests.helpers.context import build_context
from tests.integration.conftest import (
    AS,
    ISSUER,
    PASSWORD,
    REDIRECT,
    USERNAME,
    Clock,
    pkce_pair,
)
from tests.integration.test_hostile_helpers import code_for, guard, snapshot, tokens_for

RACERS = 8


def _storage(kind: str, tmp_path: Path) -> dict[str, str]:
    storage = {"tenant": f"t-{uuid.uuid4().hex}"}
    if kind == "memory":
        storage["url"] = "memory://"
    elif kind.startswith("sqlite"):
        storage["url"] = f"sqlite:///{tmp_path}/as.db"
    else:
        storage["url"] = postgres_url()
    if kind.endswith("+redis"):
        # Codes, rate limits, interactions and sessions in Redis (TieredStorage).
        storage["redis_url"] = redis_url()
    return storage


async def _server(settings: Settings) -> tuple[AS, Any]:
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    await ctx.storage.save_user(
        await new_user(settings.storage.tenant, USERNAME, PASSWORD, clock(), hashing=INSECURE_TEST)
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    return guard(AS(http, ctx, clock, settings)), ctx


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite+redis", marks=pytest.mark.redis),
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def make_server(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Path
) -> Callable[..., Any]:
    kind = str(request.param)

    def build(**overrides: Any) -> Any:
        settings = settings_factory(issuer=ISSUER, storage=_storage(kind, tmp_path), **overrides)
        return _Running(settings)

    return build


class _Running:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: Any = None

    async def __aenter__(self) -> AS:
        self.server, self.ctx = await _server(self.settings)
        return self.server

    async def __aexit__(self, *exc: object) -> None:
        await self.server.http.aclose()
        await self.ctx.storage.close()


async def _race(server: AS, form: dict[str, str]) -> list[httpx.Response]:
    return list(
        await asyncio.gather(*(server.http.post("/token", data=form) for _ in range(RACERS)))
    )


async def test_concurrent_code_redemption(make_server: Callable[..., Any]) -> None:
    async with make_server() as server:
        client = await server.register()
        code, verifier = await code_for(server, client["client_id"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client["client_id"],
        }
        responses = await _race(server, form)
        assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1)
        for response in responses:
            if response.status_code == 400:
                assert response.json()["error"] == "invalid_grant"
        # The replays revoked the grant, the winner's tokens included.
        stats = (await snapshot(server)).stats
        assert stats.live_grants == 0
        assert stats.live_access_tokens == 0
        assert stats.live_refresh_tokens == 0


async def test_concurrent_refresh_without_grace(make_server: Callable[..., Any]) -> None:
    async with make_server(tokens={"refresh_grace_seconds": 0}) as server:
        client = await server.register()
        tokens = await tokens_for(server, client["client_id"])
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        }
        responses = await _race(server, form)
        assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1)
        for response in responses:
            if response.status_code == 400:
                assert response.json()["error"] == "invalid_grant"
        # Reuse of the rotated token revoked the grant: the winner's successor is dead too.
        stats = (await snapshot(server)).stats
        assert stats.live_grants == 0
        assert stats.live_refresh_tokens == 0


async def test_concurrent_refresh_within_grace(make_server: Callable[..., Any]) -> None:
    """A client refreshing several times at once: one rotation, and every response carries
    that same successor (RFC 9700 §4.14.2: the grant never forks into two live chains)."""
    async with make_server() as server:
        client = await server.register()
        tokens = await tokens_for(server, client["client_id"])
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        }
        responses = await _race(server, form)
        assert [r.status_code for r in responses] == [200] * RACERS
        [successor] = {r.json()["refresh_token"] for r in responses}
        assert successor != tokens["refresh_token"]
        assert len({r.json()["access_token"] for r in responses}) == RACERS
        stats = (await snapshot(server)).stats
        assert (stats.live_grants, stats.live_refresh_tokens) == (1, 1)
        # The successor is the live token: it rotates, once.
        form["refresh_token"] = successor
        assert [r.status_code for r in await _race(server, form)] == [200] * RACERS
        assert (await snapshot(server)).stats.live_refresh_tokens == 1


async def test_concurrent_consent_submissions(make_server: Callable[..., Any]) -> None:
    """A double-clicked Approve completes the interaction once: one code, one grant."""
    async with make_server() as server:
        client = await server.register()
        start = await server.http.get(server.authorize_url(client["client_id"], "a" * 43))
        interaction = start.headers["location"]
        login = parse_form((await server.http.get(interaction)).text)
        await server.http.post(
            login.action,
            data={"csrf_token": login.csrf_token, "username": USERNAME, "password": PASSWORD},
        )
        consent = parse_form((await server.http.get(interaction)).text)
        data = {"csrf_token": consent.csrf_token, "decision": "approve"}
        responses = await asyncio.gather(
            *(server.http.post(consent.action, data=data) for _ in range(RACERS))
        )
        assert sorted(r.status_code for r in responses) == [303] + [400] * (RACERS - 1)
        stats = (await snapshot(server)).stats
        assert stats.live_grants == 1
        assert stats.live_authorization_codes == 1


# --- across processes: no node, and no crash, forks a grant ---------------------------------

KILL_WORKER = Path(__file__).with_name("refresh_kill_worker.py")
STORAGE_KEY = base64.b64encode(bytes(range(32, 64))).decode()


def _shared_storage(kind: str, tmp_path: Path) -> dict[str, str]:
    """SQLite file or PostgreSQL, a tenant of its own, one storage key for every process."""
    return {**_storage(kind, tmp_path), "encryption_key": STORAGE_KEY}


def _env(settings: Settings) -> dict[str, str]:
    """The OSTIARY_* variables that make a child process use ``settings``' storage."""
    storage = settings.storage
    return {
        **os.environ,
        "OSTIARY_ISSUER": settings.issuer,
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "OSTIARY_DATA_DIR": str(settings.data_dir),
        "OSTIARY_STORAGE__URL": storage.url,
        "OSTIARY_STORAGE__TENANT": storage.tenant,
        "OSTIARY_STORAGE__ENCRYPTION_KEY": STORAGE_KEY,
    }


async def _restarted(settings: Settings, now: int) -> tuple[AS, ServerContext]:
    """A fresh server on the same storage (no new user: alice is already stored)."""
    clock = Clock(now)
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    return guard(AS(http, ctx, clock, settings)), ctx


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_rotation_committed_by_a_killed_server_is_answered_after_a_restart(
    kind: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """kill -9 after the rotation commits and before the response; restart; the client's
    retry within the window gets the successor the dead process committed."""
    settings = settings_factory(issuer=ISSUER, storage=_shared_storage(kind, tmp_path))
    async with _Running(settings) as server:
        client = await server.register()
        tokens = await tokens_for(server, client["client_id"])
        now = server.clock.now
    argv = [sys.executable, str(KILL_WORKER), client["client_id"], tokens["refresh_token"]]

    killed = await asyncio.to_thread(
        subprocess.run,
        [*argv, str(now + 1)],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    status, committed = killed.stdout.split()
    assert status == "ok"
    server, ctx = await _restarted(settings, now + 1 + settings.tokens.refresh_grace_seconds)
    try:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        }
        retry = await server.http.post("/token", data=form)
        assert retry.status_code == 200, retry.text
        assert hash_secret(retry.json()["refresh_token"]) == committed
        stats = (await snapshot(server)).stats
        assert (stats.live_grants, stats.live_refresh_tokens) == (1, 1)
        # One second past the window, the same retry is reuse: the grant goes.
        server.clock.now += 1
        late = await server.http.post("/token", data=form)
        assert late.status_code == 400
        assert late.json() == {
            "error": "invalid_grant",
            "error_description": "refresh token was already used; the grant is revoked",
        }
        stats = (await snapshot(server)).stats
        assert (stats.live_grants, stats.live_refresh_tokens) == (0, 0)
    finally:
        await server.http.aclose()
        await ctx.storage.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_servers_racing_one_refresh_token_hand_out_one_successor(
    kind: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two ``ostiary serve`` processes on one database, RACERS requests split between them
    with the same refresh token: every answer is a 200 holding the same successor."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = settings_factory(issuer=issuer, storage=_shared_storage(kind, tmp_path))
    env = {
        key: value
        for key, value in _env(settings).items()
        if key.startswith("OSTIARY_STORAGE__") or key == "OSTIARY_ISSUER"
    }
    with (
        running_server(tmp_path / "a", port, **env) as first,
        running_server(tmp_path / "b", free_port(), **env) as second,
    ):
        first.add_user(USERNAME, PASSWORD)
        async with (
            httpx.AsyncClient(base_url=issuer, timeout=30) as http_a,
            httpx.AsyncClient(base_url=second.issuer, timeout=30) as http_b,
        ):
            registered = await http_a.post(
                "/register",
                json={
                    "client_name": "Racer",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                    "application_type": "native",
                },
            )
            assert registered.status_code == 201, registered.text
            client_id = registered.json()["client_id"]
            tokens = await _tokens_over_http(http_a, issuer, client_id)
            form = {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client_id,
            }

            responses = await asyncio.gather(
                *((http_a if i % 2 else http_b).post("/token", data=form) for i in range(RACERS))
            )

        assert [r.status_code for r in responses] == [200] * RACERS, [r.text for r in responses]
        [successor] = {r.json()["refresh_token"] for r in responses}
        assert successor != tokens["refresh_token"]
    storage = open_storage(settings)
    try:
        stats = await storage.stats(settings.storage.tenant, int(time.time()))
        assert (stats.live_grants, stats.live_refresh_tokens) == (1, 1)
        old = await storage.get_refresh_token(
            settings.storage.tenant, hash_secret(tokens["refresh_token"])
        )
        assert old is not None
        assert old.successor_hash == hash_secret(successor)
    finally:
        await storage.close()


async def _tokens_over_http(http: httpx.AsyncClient, issuer: str, client_id: str) -> Any:
    """Log in, approve and redeem the code against a running server."""
    response = await http.post("/token", data=await _code_form_over_http(http, issuer, client_id))
    assert response.status_code == 200, response.text
    return response.json()


async def _code_form_over_http(
    http: httpx.AsyncClient, issuer: str, client_id: str
) -> dict[str, str]:
    """Log in and approve against a running server; the token request redeeming the code."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
        "scope": "mcp:read",
        "resource": f"{issuer}/mcp",
    }
    location = await authorize(
        http, f"{issuer}/authorize?{urlencode(query)}", username=USERNAME, password=PASSWORD
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
        "resource": f"{issuer}/mcp",
    }
