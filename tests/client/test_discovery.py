"""Discovery order and metadata validation (RFC 9728 §3, RFC 8414 §3, MCP discovery)."""

from __future__ import annotations

import pytest

from ostiary.client.discovery import (
    as_metadata_urls,
    canonical_resource,
    is_resource_allowed,
    is_secure_url,
    parse_as_metadata,
    parse_prm,
    prm_urls,
    require_pkce_s256,
    require_secure_urls,
)
from ostiary.errors import DiscoveryError


def test_prm_urls_header_first_then_path_inserted_then_root() -> None:
    assert prm_urls("https://h.example/public/mcp", "https://h.example/custom.json") == [
        "https://h.example/custom.json",
        "https://h.example/.well-known/oauth-protected-resource/public/mcp",
        "https://h.example/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_for_a_root_server() -> None:
    assert prm_urls("https://h.example/", None) == [
        "https://h.example/.well-known/oauth-protected-resource"
    ]


def test_as_metadata_urls_for_a_path_issuer() -> None:
    assert as_metadata_urls("https://as.example/tenant1") == [
        "https://as.example/.well-known/oauth-authorization-server/tenant1",
        "https://as.example/.well-known/openid-configuration/tenant1",
        "https://as.example/tenant1/.well-known/openid-configuration",
    ]


def test_as_metadata_urls_for_a_host_issuer() -> None:
    assert as_metadata_urls("https://as.example") == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ]


@pytest.mark.parametrize(
    ("resource", "server", "allowed"),
    [
        ("https://h/mcp", "https://h/mcp", True),
        ("https://h", "https://h/mcp", True),
        ("https://H/mcp/", "HTTPS://h/mcp", True),
        ("https://h/mc", "https://h/mcp", False),
        ("https://evil.example.com/mcp", "https://h/mcp", False),
        ("http://h/mcp", "https://h/mcp", False),
        ("https://h/mcp/sub", "https://h/mcp", False),
    ],
)
def test_resource_match(resource: str, server: str, allowed: bool) -> None:
    assert is_resource_allowed(resource, server) is allowed


def test_canonical_resource_is_the_shared_rule() -> None:
    """The AS's and the RS's rule (core/resource_uri.py): scheme and host lowercased, default
    port dropped, path and query kept; a fragment is refused, not silently dropped."""
    assert canonical_resource("HTTPS://Host.Example:443/?q=1") == "https://host.example/?q=1"
    assert canonical_resource("https://h/MCP/") == "https://h/MCP/"
    with pytest.raises(DiscoveryError) as info:
        canonical_resource("https://h/mcp#f")
    assert str(info.value) == "'https://h/mcp#f' is not a resource URI: " + (
        "resource must not contain a fragment"
    )


def test_prm_without_authorization_servers_is_invalid() -> None:
    with pytest.raises(DiscoveryError) as caught:
        parse_prm({"resource": "https://h/mcp", "authorization_servers": []}, "u", "https://h/mcp")
    assert str(caught.value) == (
        "protected resource metadata at u is invalid: authorization_servers: "
        "List should have at least 1 item after validation, not 0"
    )


def test_prm_that_is_not_an_object() -> None:
    with pytest.raises(DiscoveryError) as caught:
        parse_prm(["x"], "u", "https://h/mcp")
    assert str(caught.value) == "protected resource metadata at u is not a JSON object"


def test_as_metadata_issuer_must_match_exactly() -> None:
    body = {"issuer": "https://as/", "token_endpoint": "https://as/token"}
    with pytest.raises(DiscoveryError) as caught:
        parse_as_metadata(body, "u", "https://as")
    assert str(caught.value) == (
        "authorization server metadata at u names issuer 'https://as/', expected exactly 'https://as'"
    )


def test_as_metadata_needs_s256() -> None:
    body = {"issuer": "https://as", "token_endpoint": "https://as/t"}
    meta = parse_as_metadata(
        {**body, "code_challenge_methods_supported": ["plain"]}, "u", "https://as"
    )
    with pytest.raises(DiscoveryError):
        require_pkce_s256(meta)
    require_pkce_s256(
        parse_as_metadata({**body, "code_challenge_methods_supported": ["S256"]}, "u", "https://as")
    )


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://as.example/t", True),
        ("http://127.0.0.1:8000/t", True),
        ("http://localhost/t", True),
        ("http://[::1]:9/t", True),
        ("http://as.example/t", False),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
    ],
)
def test_is_secure_url(url: str, secure: bool) -> None:
    assert is_secure_url(url) is secure


def test_plain_http_endpoints_are_refused() -> None:
    with pytest.raises(DiscoveryError) as caught:
        require_secure_urls(["https://ok", None, "http://as.example/token"], "authorization server")
    assert str(caught.value) == (
        "refusing authorization server URL 'http://as.example/token': "
        "https is required (http only on loopback)"
    )
