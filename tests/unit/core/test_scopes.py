"""Scope grammar and narrowing (RFC 6749 §3.3, §6)."""

from __future__ import annotations

import pytest

from ostiary.core.scopes import (
    format_scope,
    is_scope_token,
    narrow_scopes,
    parse_scope,
    resolve_requested_scopes,
)
from ostiary.errors import InvalidScopeError

SUPPORTED = ("mcp:read", "mcp:write", "offline_access")


@pytest.mark.parametrize("value", [None, "", " ", "   "])
def test_absent_scope_parses_to_empty(value: str | None) -> None:
    assert parse_scope(value) == ()


def test_parse_keeps_order_and_drops_duplicates() -> None:
    assert parse_scope("b a b c a") == ("b", "a", "c")


def test_parse_tolerates_repeated_and_edge_spaces() -> None:
    assert parse_scope("  mcp:read   mcp:write ") == ("mcp:read", "mcp:write")


@pytest.mark.parametrize("value", ['a "b"', "a\\b", "a\tb", "a\nb", "caf\u00e9", "a\x7fb"])
def test_forbidden_characters_are_invalid_scope(value: str) -> None:
    """RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )."""
    with pytest.raises(InvalidScopeError) as exc:
        parse_scope(value)
    assert exc.value.error == "invalid_scope"
    assert exc.value.description == (
        "scope must be space-separated tokens of printable ASCII characters"
    )


def test_every_allowed_character_is_a_token() -> None:
    token = "".join(chr(c) for c in range(0x21, 0x7F) if c not in (0x22, 0x5C))
    assert is_scope_token(token)
    assert parse_scope(token) == (token,)


def test_format_joins_with_single_spaces_without_duplicates() -> None:
    assert format_scope(["a", "b", "a"]) == "a b"
    assert format_scope([]) == ""


def test_empty_request_falls_back_to_client_scope() -> None:
    assert resolve_requested_scopes(
        (), client_scope="mcp:write mcp:read", supported=SUPPORTED, default=("mcp:read",)
    ) == ("mcp:write", "mcp:read")


def test_empty_request_drops_registered_scopes_no_longer_supported() -> None:
    assert resolve_requested_scopes(
        (), client_scope="legacy mcp:read", supported=SUPPORTED, default=()
    ) == ("mcp:read",)


def test_empty_request_without_client_scope_gets_default() -> None:
    assert resolve_requested_scopes(
        (), client_scope=None, supported=SUPPORTED, default=("mcp:read", "mcp:read")
    ) == ("mcp:read",)


def test_requested_scopes_are_kept_in_order() -> None:
    assert resolve_requested_scopes(
        ("mcp:write", "mcp:read"), client_scope=None, supported=SUPPORTED, default=()
    ) == ("mcp:write", "mcp:read")


def test_unsupported_scope_is_named() -> None:
    with pytest.raises(InvalidScopeError) as exc:
        resolve_requested_scopes(
            ("mcp:read", "admin", "root"), client_scope=None, supported=SUPPORTED, default=()
        )
    assert exc.value.description == "unsupported scope: admin root"


def test_requested_scopes_within_client_registration() -> None:
    assert resolve_requested_scopes(
        ("mcp:read",), client_scope="mcp:read mcp:write", supported=SUPPORTED, default=()
    ) == ("mcp:read",)


def test_scope_outside_client_registration_is_named() -> None:
    with pytest.raises(InvalidScopeError) as exc:
        resolve_requested_scopes(
            ("mcp:read", "mcp:write"), client_scope="mcp:read", supported=SUPPORTED, default=()
        )
    assert exc.value.description == "scope not registered for this client: mcp:write"


def test_long_offender_lists_are_truncated() -> None:
    requested = tuple(f"s{i}" for i in range(12))
    with pytest.raises(InvalidScopeError) as exc:
        resolve_requested_scopes(requested, client_scope=None, supported=(), default=())
    assert exc.value.description == "unsupported scope: s0 s1 s2 s3 s4 s5 s6 s7 s8 s9 ..."


def test_narrow_without_request_keeps_granted() -> None:
    assert narrow_scopes((), ("a", "b")) == ("a", "b")


def test_narrow_to_subset() -> None:
    """RFC 6749 §6: the refreshed scope MUST NOT include scope not originally granted."""
    assert narrow_scopes(("b",), ("a", "b")) == ("b",)


def test_narrow_beyond_grant_is_invalid_scope() -> None:
    with pytest.raises(InvalidScopeError) as exc:
        narrow_scopes(("a", "c"), ("a", "b"))
    assert exc.value.description == "scope exceeds the original grant: c"
