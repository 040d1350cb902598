"""Identity headers for upstreams: the token is never passed through, forged headers dropped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ostiary.resource.forwarding import IdentityHeaders, IdentityHeadersMiddleware
from ostiary.resource.middleware import BearerAuthMiddleware
from ostiary.resource.scopes import McpPublicAccess
from ostiary.resource.verifiers import JWTVerifier, Principal
from tests.resource._rs_support import (
    ISSUER,
    JWKS_URI,
    RESOURCE,
    AuthorizationServerDouble,
    SigningKey,
    mint,
)

KEY = SigningKey.generate("ES256", kid="fw-1")


async def upstream(scope: Any, receive: Any, send: Any) -> None:
    """Echo the request headers back, like an MCP server would see them."""
    while (await receive()).get("more_body"):
        pass
    body = "\n".join(f"{k.decode()}: {v.decode()}" for k, v in scope["headers"]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def seen_headers(app: Any, **headers: str) -> list[str]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://mcp.example.com"
    ) as client:
        response = await client.post(
            "/mcp",
            content=b'{"jsonrpc":"2.0","id":1,"method":"initialize"}',
            headers={"content-type": "application/json", **headers},
        )
    assert response.status_code == 200
    return sorted(
        line for line in response.text.splitlines() if line.split(":")[0] not in ("host", "accept",
        "accept-encoding", "connection", "user-agent", "content-length", "content-type")
    )  # fmt: skip


async def test_token_is_replaced_by_verified_identity() -> None:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with auth_server.client() as jwks:
        app = BearerAuthMiddleware(
            IdentityHeadersMiddleware(upstream, IdentityHeaders(client_id="x-ostiary-client")),
            verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=jwks),
            resource_metadata_url=None,
        )
        seen = await seen_headers(
            app,
            authorization=f"Bearer {mint(KEY, sub='alice')}",
            **{"X-Ostiary-Subject": "admin", "X-Ostiary-Scopes": "everything"},
        )
    assert seen == [
        "x-ostiary-client: client-abc",
        "x-ostiary-scopes: mcp:read mcp:write",
        "x-ostiary-subject: alice",
    ]


async def _seen_with(headers: IdentityHeaders, **forged: str) -> list[str]:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with auth_server.client() as jwks:
        app = BearerAuthMiddleware(
            IdentityHeadersMiddleware(upstream, headers),
            verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=jwks),
            resource_metadata_url=None,
        )
        return await seen_headers(app, authorization=f"Bearer {mint(KEY, sub='alice')}", **forged)


FORGED = {
    "X-Ostiary-Client-Id": "evil-client",
    "X-Ostiary-Subject": "admin",
    "X-Ostiary-Scopes": "everything",
    "X-Ostiary-Admin": "1",
    "x-ostiary-": "empty-suffix",
}


async def test_forged_headers_of_a_disabled_field_are_dropped() -> None:
    """client_id off (the default): an upstream that trusts x-ostiary-client-id must not get
    the one a client sent; nor any other header of the namespace ostiary writes."""
    seen = await _seen_with(IdentityHeaders(), **FORGED)
    assert seen == ["x-ostiary-scopes: mcp:read mcp:write", "x-ostiary-subject: alice"]


async def test_renamed_headers_and_the_whole_namespace_are_dropped() -> None:
    seen = await _seen_with(
        IdentityHeaders(subject="X-User", client_id=None, scopes=None),
        **FORGED,
        **{"x-user": "mallory", "X-Other": "kept"},
    )
    assert seen == ["x-other: kept", "x-user: alice"]


async def test_anonymous_public_request_carries_no_identity() -> None:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    async with auth_server.client() as jwks:
        app = BearerAuthMiddleware(
            IdentityHeadersMiddleware(upstream),
            verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=jwks),
            resource_metadata_url=None,
            anonymous=McpPublicAccess([]),
        )
        seen = await seen_headers(app, **FORGED)
    assert seen == []


def test_identity_values_refuse_header_injection() -> None:
    principal = Principal("evil\r\nx-admin: 1", "c", (), (RESOURCE,))
    with pytest.raises(ValueError, match="control characters"):
        IdentityHeaders().values(principal)


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await IdentityHeadersMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
