"""Racing requests through the whole app: nothing single-use can be spent twice.

DESIGN "Bad input": no code or refresh token can be spent twice, even under concurrent
requests. The storage contract suite proves the primitives; these tests fire real concurrent
HTTP requests at the endpoints on memory, SQLite and PostgreSQL, each also with Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ostiary.core.context import ServerContext
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url, redis_url
from tests.helpers.browserless import parse_form
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, USERNAME, Clock
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
    ctx = ServerContext.build(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    await ctx.storage.save_user(
        await new_user(settings.storage.tenant, USERNAME, PASSWORD, clock())
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
