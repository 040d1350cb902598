"""Two ``ostiary serve`` nodes on one PostgreSQL and one Redis, as deployed behind a balancer.

* Requests alternate between the nodes; the same authorization code raced on both has exactly
  one winner.
* Under load, node B is killed with SIGKILL. Requests that can no longer reach it go to node A
  (as a balancer would send them), no request gets an error answer, and nothing either node
  acknowledged is lost: every refresh token a node handed out still works, including a
  rotation B committed but never answered (its retry on A gets the same successor).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import redis_url
from tests.e2e.server import free_port, running_server
from tests.integration.conftest import PASSWORD, REDIRECT, USERNAME
from tests.integration.test_hostile_concurrency import (
    _code_form_over_http,
    _env,
    _shared_storage,
    _tokens_over_http,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CHAINS = 4
LOAD_SECONDS = 6.0
KILL_AFTER = 2.0


async def _register(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/register",
        json={
            "client_name": "Two nodes",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


async def test_two_nodes_share_everything_and_survive_a_kill(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    storage = {**_shared_storage("postgres", tmp_path), "redis_url": redis_url()}
    settings = settings_factory(issuer=issuer, storage=storage)
    env = {
        k: v
        for k, v in _env(settings).items()
        if k.startswith("OSTIARY_STORAGE__") or k == "OSTIARY_ISSUER"
    }
    env["OSTIARY_STORAGE__REDIS_URL"] = redis_url()
    env["OSTIARY_SECURITY__RATE_LIMIT_PER_MINUTE"] = "1000000"  # one address makes the load
    with (
        running_server(tmp_path / "a", port, **env) as node_a,
        running_server(tmp_path / "b", free_port(), **env) as node_b,
    ):
        node_a.add_user(USERNAME, PASSWORD)
        async with (
            httpx.AsyncClient(base_url=issuer, timeout=30) as a,
            httpx.AsyncClient(base_url=node_b.issuer, timeout=30) as b,
        ):
            # One code, raced on both nodes: exactly one exchange wins.
            client_id = await _register(b)
            race = await _code_race(a, b, issuer, client_id)
            assert sorted(r.status_code for r in race) == [200, 400]
            assert [r.json()["error"] for r in race if r.status_code == 400] == ["invalid_grant"]

            clients = [await _register(a) for _ in range(CHAINS)]
            chains = [await _tokens_over_http(a, issuer, c) for c in clients]
            current = [c["refresh_token"] for c in chains]
            served = {"a": 0, "b": 0}
            failed_over = 0
            errors: list[str] = []

            async def run_chain(i: int) -> None:
                nonlocal failed_over
                step = 0
                deadline = time.monotonic() + LOAD_SECONDS
                while time.monotonic() < deadline:
                    node, http = ("b", b) if step % 2 else ("a", a)
                    form = {
                        "grant_type": "refresh_token",
                        "refresh_token": current[i],
                        "client_id": clients[i],
                    }
                    try:
                        response = await http.post("/token", data=form)
                    except httpx.TransportError:
                        failed_over += 1  # B is gone: the balancer sends the retry to A
                        node, response = "a", await a.post("/token", data=form)
                    if response.status_code != 200:
                        errors.append(f"{node}: {response.status_code} {response.text}")
                        return
                    served[node] += 1
                    current[i] = response.json()["refresh_token"]  # acknowledged
                    step += 1

            async def kill_b() -> None:
                await asyncio.sleep(KILL_AFTER)
                node_b.process.kill()

            await asyncio.gather(kill_b(), *(run_chain(i) for i in range(CHAINS)))
            # Every token acknowledged last still works, on the surviving node.
            final = await asyncio.gather(
                *(
                    a.post(
                        "/token",
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": current[i],
                            "client_id": clients[i],
                        },
                    )
                    for i in range(CHAINS)
                )
            )
    assert errors == []
    assert served["a"] > 0
    assert served["b"] > 0
    assert failed_over >= 1, "B was killed while requests were going to it"
    assert [r.status_code for r in final] == [200] * CHAINS, [r.text for r in final]
    check = open_storage(settings)
    try:
        stats = await check.stats(settings.storage.tenant, int(time.time()))
    finally:
        await check.close()
    # One live refresh token per chain, nothing forked; the raced code's grant was revoked by
    # the losing replay (OAuth 2.1 §4.1.3), so it is not live.
    assert stats.live_refresh_tokens == stats.live_grants == CHAINS


async def _code_race(
    a: httpx.AsyncClient, b: httpx.AsyncClient, issuer: str, client_id: str
) -> list[Any]:
    form = await _code_form_over_http(a, issuer, client_id)
    return list(await asyncio.gather(a.post("/token", data=form), b.post("/token", data=form)))
