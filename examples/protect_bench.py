"""Cost of ostiary's resource-server layer on an MCP ``tools/call`` (in-process, no network).

Drives the same official-SDK MCP server (stateless, JSON responses) three ways through its ASGI
interface: without auth, behind ``protect_mcp_app`` with a JWT verifier (ES256, real JWKS),
and the same with the verified-token cache off (a signature check on every request). Rounds
are interleaved; throughput is computed from the *CPU time* of the best round of each kind
(the tool is async, so no worker thread is involved), which keeps CPU stolen by other
processes on a shared machine out of the figures; latency percentiles are wall-clock.
Run: ``python examples/protect_bench.py [requests]``.

Network and HTTP parsing are left out on purpose: they cost the same with and without auth,
so leaving them out gives the *worst* ratio, not a flattering one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import JWTVerifier

ISSUER = "https://auth.example.com"
RESOURCE = "http://127.0.0.1:8000/mcp"
BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}},
    }
).encode()
OPTIONS = {"stateless_http": True, "json_response": True}


def mcp_server() -> MCPServer:
    server = MCPServer("bench")

    @server.tool()
    async def echo(text: str) -> str:
        return text

    return server


def mint(key: ECKey) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "bench-user",
        "aud": RESOURCE,
        "client_id": "bench",
        "scope": "mcp:read",
        "jti": "j",
        "iat": now,
        "exp": now + 3600,
    }
    header = {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def jwks_client(key: ECKey) -> httpx.AsyncClient:
    public = {**key.as_dict(private=False), "kid": "k1", "alg": "ES256", "use": "sig"}

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [public]})

    app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)


async def one_call(app: Any, authorization: bytes | None) -> float:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-protocol-version", b"2025-06-18"),
    ]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    if statuses != [200]:
        raise RuntimeError(f"unexpected status {statuses}")
    return elapsed


async def main(requests: int, rounds: int = 8) -> None:
    logging.disable(logging.CRITICAL)
    key = ECKey.generate_key("P-256")
    bearer = b"Bearer " + mint(key).encode()
    async with jwks_client(key) as http:
        variants: dict[str, tuple[Any, bytes | None]] = {
            "no auth": (
                mcp_server().streamable_http_app(
                    streamable_http_path="/mcp", host="127.0.0.1", **OPTIONS
                ),
                None,
            ),
        }
        for label, cache_size in (("ostiary JWT", 4096), ("ostiary JWT, no cache", 0)):
            verifier = JWTVerifier(
                ISSUER, RESOURCE, f"{ISSUER}/.well-known/jwks.json", http_client=http,
                cache_size=cache_size,
            )  # fmt: skip
            app = protect_mcp_app(
                mcp_server(),
                resource=RESOURCE,
                issuer=ISSUER,
                verifier=verifier,
                policy=ProtectionPolicy(
                    required_scopes=["mcp:read"],
                    tool_scopes={"echo": ["mcp:read"]},
                ),
                streamable_http_options=OPTIONS,
            )
            variants[label] = (app, bearer)
        async with contextlib.AsyncExitStack() as stack:
            for app, _ in variants.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            best = await _measure(variants, requests, rounds)
    _report(best)


async def _measure(
    variants: dict[str, tuple[Any, bytes | None]], requests: int, rounds: int
) -> dict[str, tuple[float, list[float]]]:
    best: dict[str, tuple[float, list[float]]] = {}
    for app, authorization in variants.values():  # warm up JWKS, caches, imports
        for _ in range(50):
            await one_call(app, authorization)
    for _ in range(rounds):
        for label, (app, authorization) in variants.items():
            cpu = time.process_time()
            samples = [await one_call(app, authorization) for _ in range(requests)]
            cpu = time.process_time() - cpu
            if label not in best or cpu < best[label][0]:
                best[label] = (cpu, samples)
    return best


def _report(best: dict[str, tuple[float, list[float]]]) -> None:
    def ops(label: str) -> float:
        cpu, samples = best[label]
        return len(samples) / cpu

    def pct(samples: list[float], q: float) -> float:
        return sorted(samples)[int(q * (len(samples) - 1))] * 1e3

    base = ops("no auth")
    print(f"{'variant':24} {'ops/s/core':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs no auth':>10}")
    for label, (_, samples) in best.items():
        print(
            f"{label:24} {ops(label):10.0f} {pct(samples, 0.5):8.3f} "
            f"{pct(samples, 0.99):8.3f} {ops(label) / base:10.2%}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 400))
