"""CORS preflight/exposure for browser MCP clients and Host/Origin DNS-rebinding checks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ostiary.resource.cors import OriginGuardMiddleware, default_allowed_hosts, mcp_cors
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import JWTVerifier
from tests.resource._rs_support import ISSUER, JWKS_URI, AuthorizationServerDouble, SigningKey, mint

KEY = SigningKey.generate("ES256", kid="cors-1")


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def guarded(**options: Any) -> OriginGuardMiddleware:
    return OriginGuardMiddleware(
        Starlette(routes=[Route("/mcp", ok, methods=["GET", "POST"])]), **options
    )


def client(app: Any, base: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:9999", 200),
        ("localhost", 200),
        ("[::1]:8000", 200),
        ("evil.example.com", 421),
        ("127.0.0.1.evil.example.com:8000", 421),
        ("localhost:80x", 421),
    ],
)
async def test_host_allow_list(host: str, status: int) -> None:
    app = guarded(
        allowed_hosts=default_allowed_hosts("http://127.0.0.1:8000/mcp"), allowed_origins=[]
    )
    async with client(app) as http:
        response = await http.get("/mcp", headers={"Host": host})
    assert response.status_code == status
    if status == 421:
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "The Host header is not one this server answers to.",
        }


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 200),
        ("https://app.example", 200),
        ("http://localhost:3000", 200),
        ("https://evil.example", 403),
        ("null", 403),
        ("http://localhost.evil.example:3000", 403),
    ],
)
async def test_origin_check_answers_403_for_foreign_origins(
    origin: str | None, status: int
) -> None:
    """MCP streamable HTTP: an invalid Origin MUST get 403."""
    app = guarded(allowed_hosts=None, allowed_origins=["https://app.example", "http://localhost:*"])
    headers = {"Origin": origin} if origin else {}
    async with client(app) as http:
        response = await http.post("/mcp", headers=headers)
    assert response.status_code == status
    if status == 403:
        assert (
            response.json()["error_description"] == "The Origin is not allowed to call this server."
        )


def test_default_allowed_hosts_for_public_resource() -> None:
    assert default_allowed_hosts("https://MCP.example.com/mcp") == ("mcp.example.com",)
    assert default_allowed_hosts("https://mcp.example.com:8443/mcp") == ("mcp.example.com:8443",)


async def test_lifespan_passes_the_guard() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await OriginGuardMiddleware(app, allowed_hosts=[], allowed_origins=[])(
        {"type": "lifespan"},
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    assert seen == ["lifespan"]


async def test_mcp_cors_preflight() -> None:
    app = mcp_cors(Starlette(routes=[Route("/mcp", ok, methods=["POST"])]), ["https://app.example"])
    async with client(app) as http:
        response = await http.options(
            "/mcp",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-max-age"] == "600"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


# --- through protect_mcp_app --------------------------------------------------------------

RESOURCE = "https://mcp.example.com/mcp"


def protected_app(auth_server: AuthorizationServerDouble, http: httpx.AsyncClient) -> Starlette:
    return protect_mcp_app(
        MCPServer("cors"),
        resource=RESOURCE,
        issuer=ISSUER,
        verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http),
        policy=ProtectionPolicy(
            cors_origins=["https://inspector.example"],
        ),
    )


async def test_browser_client_can_read_the_401_challenge() -> None:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with (
        auth_server.client() as jwks,
        client(protected_app(auth_server, jwks), "https://mcp.example.com") as http,
    ):
        response = await http.post("/mcp", headers={"Origin": "https://inspector.example"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "https://inspector.example"
    assert response.headers["access-control-expose-headers"] == (
        "www-authenticate, mcp-session-id, mcp-protocol-version"
    )
    assert response.headers["www-authenticate"] == (
        'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
    )


async def test_preflight_needs_no_token() -> None:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with (
        auth_server.client() as jwks,
        client(protected_app(auth_server, jwks), "https://mcp.example.com") as http,
    ):
        response = await http.options(
            "/mcp",
            headers={
                "Origin": "https://inspector.example",
                "Access-Control-Request-Method": "POST",
            },
        )
    assert response.status_code == 200


async def test_foreign_origin_and_host_are_refused_before_auth() -> None:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with auth_server.client() as jwks:
        app = protected_app(auth_server, jwks)
        async with client(app, "https://mcp.example.com") as http:
            token = mint(KEY, aud=RESOURCE)
            evil_origin = await http.post(
                "/mcp",
                headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"},
            )
        async with client(app, "https://rebound.example") as http:
            evil_host = await http.post("/mcp")
            metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
    assert evil_origin.status_code == 403
    assert evil_host.status_code == 421
    assert metadata.status_code == 200  # public document, not behind the guard
