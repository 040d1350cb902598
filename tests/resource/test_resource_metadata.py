"""Protected resource metadata (RFC 9728 §2, §3.1) served over real HTTP semantics."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from ostiary.errors import ConfigurationError
from ostiary.resource.metadata import (
    build_protected_resource_metadata,
    protected_resource_metadata_routes,
    protected_resource_metadata_url,
    well_known_paths,
)

RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        (RESOURCE, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"),
        ("https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"),
        (
            "https://mcp.example.com/",
            "https://mcp.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "http://127.0.0.1:8000/public/mcp",
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/public/mcp",
        ),
        (
            "https://mcp.example.com/t/mcp?x=1",
            "https://mcp.example.com/.well-known/oauth-protected-resource/t/mcp?x=1",
        ),
    ],
)
def test_metadata_url_is_path_inserted(resource: str, url: str) -> None:
    """RFC 9728 §3.1: insert the well-known string between host and path."""
    assert protected_resource_metadata_url(resource) == url


@pytest.mark.parametrize("bad", ["/mcp", "ftp://x/mcp", "https://x/mcp#frag", "mcp.example.com"])
def test_metadata_url_refuses_non_resource_identifiers(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        protected_resource_metadata_url(bad)


def test_document_has_the_mcp_members_and_never_offline_access() -> None:
    doc = build_protected_resource_metadata(
        RESOURCE,
        [ISSUER],
        ["mcp:read", "offline_access", "mcp:write", "mcp:read"],
        resource_name="Demo",
        resource_documentation="https://docs.example.com",
    )
    assert doc == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:read", "mcp:write"],
        "resource_name": "Demo",
        "resource_documentation": "https://docs.example.com",
    }


def test_document_omits_empty_scopes_supported() -> None:
    doc = build_protected_resource_metadata(RESOURCE, [ISSUER], ["offline_access"])
    assert "scopes_supported" not in doc


def test_document_requires_an_authorization_server() -> None:
    with pytest.raises(ConfigurationError, match="at least one issuer"):
        build_protected_resource_metadata(RESOURCE, [])


def test_extra_members_cannot_override_required_ones() -> None:
    doc = build_protected_resource_metadata(
        RESOURCE, [ISSUER], extra={"resource": "https://evil.example.com", "x": 1}
    )
    assert doc["resource"] == RESOURCE
    assert doc["x"] == 1


def test_well_known_paths_without_root() -> None:
    assert well_known_paths(RESOURCE, include_root=False) == (
        "/.well-known/oauth-protected-resource/mcp",
    )
    assert well_known_paths("https://mcp.example.com") == ("/.well-known/oauth-protected-resource",)


def _client(include_root: bool = True) -> httpx.AsyncClient:
    doc = build_protected_resource_metadata(RESOURCE, [ISSUER], ["mcp:read"])
    app = Starlette(routes=protected_resource_metadata_routes(doc, include_root=include_root))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://mcp.example.com"
    )


EXPECTED_BODY = (
    b'{"resource":"https://mcp.example.com/mcp","authorization_servers":'
    b'["https://auth.example.com"],"bearer_methods_supported":["header"],'
    b'"scopes_supported":["mcp:read"]}'
)


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
)
async def test_metadata_route_serves_exact_document(path: str) -> None:
    async with _client() as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.content == EXPECTED_BODY
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"


async def test_root_form_can_be_switched_off() -> None:
    async with _client(include_root=False) as client:
        response = await client.get("/.well-known/oauth-protected-resource")
    assert response.status_code == 404


async def test_metadata_preflight_is_answered() -> None:
    async with _client() as client:
        response = await client.options(
            "/.well-known/oauth-protected-resource/mcp",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"


async def test_metadata_refuses_post() -> None:
    async with _client() as client:
        response = await client.post("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 405
