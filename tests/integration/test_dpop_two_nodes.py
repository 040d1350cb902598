"""A DPoP proof replayed to another node sharing PostgreSQL (and Redis) is refused (RFC 9449
§11.1): at the token endpoint and at the demo MCP server, whose replay cache is the storage."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import httpx
import pytest
from joserfc.jwk import ECKey

from ostiary.assembly.demo import create_combined_app
from ostiary.assembly.in_process import CombinedApp
from ostiary.settings import Settings
from tests._services import postgres_url, redis_url
from tests.demo._support import rpc
from tests.demo.test_combined_app import start
from tests.integration.dpop_support import proof
from tests.resource.test_resource_dpop import ISSUER, MCP, dpop_headers, dpop_token

pytestmark = pytest.mark.postgres


async def _node(app: CombinedApp, *, with_user: bool) -> AsyncGenerator[httpx.AsyncClient, None]:
    """One node: its own lifespan, its own process-local caches, the shared storage."""
    if with_user:
        async for client in start(app):
            yield client
        return
    ready, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            ready.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await ready.wait()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http
    finally:
        stop.set()
        await task


@pytest.fixture(params=["postgres", pytest.param("postgres+redis", marks=pytest.mark.redis)])
async def nodes(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    storage = {
        "url": postgres_url(),
        "tenant": f"t-{uuid.uuid4().hex}",
        "encryption_key": base64.b64encode(bytes(range(32))).decode(),
    }
    if request.param == "postgres+redis":
        storage["redis_url"] = redis_url()
    settings = settings_factory(issuer=ISSUER, storage=storage)
    async with contextlib.AsyncExitStack() as stack:
        one = _node(create_combined_app(settings), with_user=True)
        stack.push_async_callback(one.aclose)
        a = await one.__anext__()
        two = _node(create_combined_app(settings), with_user=False)
        stack.push_async_callback(two.aclose)
        b = await two.__anext__()
        yield a, b


async def test_a_proof_spent_on_one_node_is_refused_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = nodes
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(a, key))["access_token"]
    once = proof(key, "POST", MCP, now=int(time.time()), access_token=token)
    first = await a.post("/mcp", json=rpc("tools/list"), headers=dpop_headers(token, once))
    assert first.status_code == 200, first.text
    again = await b.post("/mcp", json=rpc("tools/list"), headers=dpop_headers(token, once))
    assert again.status_code == 401
    assert again.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "The DPoP proof was already used.",
    }


async def test_a_token_endpoint_proof_spent_on_one_node_is_refused_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = nodes
    key = ECKey.generate_key("P-256")
    tokens = await dpop_token(a, key)
    client_id = tokens["access_token"] and _client_id(tokens["access_token"])
    spent = proof(key, "POST", f"{ISSUER}/token", now=int(time.time()))
    first = await a.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
        headers={"DPoP": spent},
    )
    assert first.status_code == 200, first.text
    replayed = await b.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": client_id,
        },
        headers={"DPoP": spent},
    )
    assert replayed.status_code == 400
    assert replayed.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "The DPoP proof was already used.",
    }


def _client_id(access_token: str) -> str:
    from tests.integration.dpop_support import jwt_claims

    return str(jwt_claims(access_token)["client_id"])
