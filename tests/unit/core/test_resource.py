"""Resource indicators (RFC 8707 §2)."""

from __future__ import annotations

import pytest

from ostiary.core.resource import (
    canonical_resource,
    validate_resource_for_grant,
    validate_resources,
)
from ostiary.errors import InvalidTargetError

MCP = "https://mcp.example.com/mcp"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("HTTPS://MCP.Example.COM/Mcp", "https://mcp.example.com/Mcp"),
        ("https://mcp.example.com:443/mcp", MCP),
        ("https://mcp.example.com:8443/mcp", "https://mcp.example.com:8443/mcp"),
        ("http://127.0.0.1:80/mcp", "http://127.0.0.1/mcp"),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp"),
        ("https://mcp.example.com", "https://mcp.example.com"),
        ("https://mcp.example.com/a%2Fb?X=Y", "https://mcp.example.com/a%2Fb?X=Y"),
        ("https://mcp.example.com/mcp?", "https://mcp.example.com/mcp?"),
    ],
)
def test_canonical_resource(value: str, canonical: str) -> None:
    assert canonical_resource(value) == canonical


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("https://mcp.example.com/mcp#x", "resource must not contain a fragment"),
        ("/mcp", "resource must be an absolute URI"),
        ("", "resource must be an absolute URI"),
        ("urn:example:mcp", "resource must be an absolute URI"),
        ("https://mcp.example.com/ mcp", "resource must be an absolute URI"),
        ("https://mcp.exämple.com/mcp", "resource must be an absolute URI"),
        ("https://u:p@mcp.example.com/mcp", "resource must not contain userinfo"),
        ("https://mcp.example.com:x/mcp", "resource has an invalid port"),
    ],
)
def test_malformed_resource_is_invalid_target(value: str, description: str) -> None:
    """RFC 8707 §2: absolute URI, no fragment."""
    with pytest.raises(InvalidTargetError) as exc:
        canonical_resource(value)
    assert exc.value.error == "invalid_target"
    assert exc.value.description == description


def test_no_resource_is_none() -> None:
    assert validate_resources([], allowed=[MCP]) is None


def test_open_policy_returns_canonical_form() -> None:
    assert validate_resources(["HTTPS://mcp.example.com:443/mcp"], allowed=None) == MCP


def test_allowed_entry_spelling_is_returned_trailing_slash_insensitive() -> None:
    assert validate_resources(["https://MCP.example.com/mcp/"], allowed=[MCP]) == MCP
    assert validate_resources([MCP], allowed=["https://mcp.example.com/mcp/"]) == (
        "https://mcp.example.com/mcp/"
    )


def test_repeated_identical_resource_is_one_resource() -> None:
    assert validate_resources([MCP, MCP + "/", "HTTPS://mcp.example.com/mcp"], allowed=None) == MCP


def test_two_resources_are_refused() -> None:
    with pytest.raises(InvalidTargetError) as exc:
        validate_resources([MCP, "https://other.example.com/mcp"], allowed=None)
    assert exc.value.description == "only one resource may be requested per authorization"


@pytest.mark.parametrize(
    "value", ["http://mcp.example.com/mcp", "ftp://mcp.example.com/mcp", "http://10.0.0.1/mcp"]
)
def test_non_https_resource_is_refused(value: str) -> None:
    with pytest.raises(InvalidTargetError) as exc:
        validate_resources([value], allowed=None)
    assert exc.value.description == "resource must be an https URI (http only on loopback)"


def test_loopback_http_resource_is_accepted() -> None:
    assert validate_resources(["http://localhost:8000/mcp"], allowed=None) == (
        "http://localhost:8000/mcp"
    )


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example.com/mcp",
        "https://mcp.example.com/mcp2",
        "https://mcp.example.com/MCP",
        "https://mcp.example.com:8443/mcp",
        "https://mcp.example.com/mcp?x=1",
    ],
)
def test_resource_not_served_is_refused(value: str) -> None:
    with pytest.raises(InvalidTargetError) as exc:
        validate_resources([value], allowed=[MCP])
    assert exc.value.description == "resource is not served by this authorization server"


def test_token_request_without_resource_uses_grant() -> None:
    assert validate_resource_for_grant([], MCP) == MCP
    assert validate_resource_for_grant([], None) is None


def test_token_request_naming_grant_resource_returns_stored_spelling() -> None:
    assert validate_resource_for_grant(["https://MCP.example.com/mcp/"], MCP) == MCP


def test_token_request_for_other_resource_is_invalid_target() -> None:
    """RFC 8707 §2.2: the token request may not widen the audience."""
    with pytest.raises(InvalidTargetError) as exc:
        validate_resource_for_grant(["https://other.example.com/mcp"], MCP)
    assert exc.value.description == "resource does not match the original authorization"


def test_token_request_resource_when_grant_had_none_is_invalid_target() -> None:
    with pytest.raises(InvalidTargetError) as exc:
        validate_resource_for_grant([MCP], None)
    assert exc.value.description == "resource was not part of the original authorization"


def test_token_request_with_two_resources_is_invalid_target() -> None:
    with pytest.raises(InvalidTargetError) as exc:
        validate_resource_for_grant([MCP, "https://other.example.com/mcp"], MCP)
    assert exc.value.description == "only one resource may be requested per authorization"
