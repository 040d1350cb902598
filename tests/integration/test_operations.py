"""Operating ostiary: ``/metrics`` (Prometheus text format) and ``/ready`` (readiness).

The app is built the way ``ostiary serve`` builds it (``serving.build_app``: the combined AS and
demo, with the per-request metrics around it) and driven over HTTP in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ostiary.assembly.in_process import CombinedApp
from ostiary.assembly.serving import ServeOptions, build_app
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.settings import Settings
from tests._services import unavailable
from tests.demo._support import PASSWORD, USERNAME, mcp_headers, obtain_token, rpc

ISSUER = "http://127.0.0.1:8000"
TOKEN = "metrics-token-0123456789"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = build_app(settings, ServeOptions())
    inner: Any = app
    while not isinstance(inner, CombinedApp):  # request ids, limits, metrics around it
        inner = inner.app
    ready, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with inner.lifespan():
            ready.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():  # the start-up failed: say why instead of waiting forever
        waiting.cancel()
        task.result()
    try:
        ctx = inner.state.ctx
        await ctx.storage.save_user(
            await new_user(ctx.tenant, USERNAME, PASSWORD, ctx.clock(), hashing=INSECURE_TEST)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield inner, http
    finally:
        stop.set()
        await task


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_exactly_what_happened(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(issuer=ISSUER, metrics={"token": TOKEN})
    async with serving(settings) as (_, http):
        issued = await obtain_token(
            ISSUER, f"{ISSUER}/mcp", scope="mcp:read offline_access", http=http
        )
        refreshed = await http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": issued.refresh_token,
                "client_id": issued.client_id,
            },
        )
        call = await http.post(
            "/mcp",
            json=rpc("tools/call", {"name": "get_user_info", "arguments": {}}),
            headers=mcp_headers(refreshed.json()["access_token"]),
        )
        revoked = await http.post(
            "/revoke",
            data={"token": refreshed.json()["refresh_token"], "client_id": issued.client_id},
        )
        anonymous = await http.post("/mcp", json=rpc("tools/list"), headers=mcp_headers())
        refused = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        exposition = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (refreshed.status_code, revoked.status_code, call.status_code) == (200, 200, 200)
    assert anonymous.status_code == 401
    assert refused.status_code == wrong.status_code == 401
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain; version=")
    found = samples(exposition.text)
    assert found[("ostiary_tokens_total", (("operation", "issued"),))] == 1
    assert found[("ostiary_tokens_total", (("operation", "refreshed"),))] == 1
    assert found[("ostiary_tokens_total", (("operation", "revoked"),))] == 1
    assert found[("ostiary_logins_total", (("outcome", "succeeded"),))] == 1
    assert found[("ostiary_audit_events_total", (("event", "client.registered"),))] == 1
    token_200 = (("method", "POST"), ("route", "/token"), ("status", "200"))
    assert found[("ostiary_http_requests_total", token_200)] == 2  # the code, the refresh
    mcp_401 = (("method", "POST"), ("route", "/mcp"), ("status", "401"))
    assert found[("ostiary_http_requests_total", mcp_401)] == 1
    metrics_401 = (("method", "GET"), ("route", "/metrics"), ("status", "401"))
    assert found[("ostiary_http_requests_total", metrics_401)] == 2
    assert found[("ostiary_http_request_duration_seconds_count", (("route", "/token"),))] == 2
    rotations = (
        "ostiary_storage_operation_duration_seconds_count",
        (("operation", "refresh_grant"),),
    )
    assert found[rotations] == 1
    assert not any(
        TOKEN in line or "refresh_token=" in line for line in exposition.text.splitlines()
    )


async def test_metrics_are_off_unless_configured(settings_factory: Callable[..., Settings]) -> None:
    async with serving(settings_factory(issuer=ISSUER)) as (inner, http):
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert inner.state.metrics is None
    assert response.status_code == 404


async def test_rate_limit_hits_are_counted(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(
        issuer=ISSUER, metrics={"token": TOKEN}, security={"rate_limit_per_minute": 2}
    )
    async with serving(settings) as (_, http):
        for _ in range(3):
            await http.post("/register", json={"redirect_uris": ["http://127.0.0.1:9/cb"]})
        exposition = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    found = samples(exposition.text)
    assert found[("ostiary_throttled_total", (("kind", "rate_limit"),))] == 1
    register_429 = (("method", "POST"), ("route", "/register"), ("status", "429"))
    assert found[("ostiary_http_requests_total", register_429)] == 1


async def test_ready_names_every_check(settings_factory: Callable[..., Settings]) -> None:
    async with serving(settings_factory(issuer=ISSUER)) as (_, http):
        response = await http.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"storage": "ok", "signing_key": "ok"},
    }


@pytest.mark.redis
async def test_ready_is_503_with_a_reason_when_redis_goes_down(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    """A Redis server of the test's own, stopped while ostiary runs."""
    from tests.e2e.server import free_port

    server = shutil.which("redis-server")
    if server is None:
        unavailable("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            await asyncio.sleep(0.1)
        settings = settings_factory(
            issuer=ISSUER,
            storage={
                "url": f"sqlite:///{tmp_path}/o.db",
                "redis_url": f"redis://127.0.0.1:{port}/0",
            },
        )
        async with serving(settings) as (_, http):
            up = await http.get("/ready")
            redis.terminate()
            redis.wait(10)
            down = await http.get("/ready")
    finally:
        redis.kill()
    assert up.json()["checks"] == {"storage": "ok", "redis": "ok", "signing_key": "ok"}
    assert down.status_code == 503
    assert down.headers["retry-after"] == "5"
    assert down.json() == {
        "status": "unavailable",
        "reason": "redis: unavailable",
        "checks": {"storage": "ok", "redis": "unavailable", "signing_key": "ok"},
    }
