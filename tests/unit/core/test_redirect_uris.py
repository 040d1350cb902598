"""Redirect URI helpers (RFC 8252 §7.3; RFC 9700 §2.1). Case tables live in tests/vectors."""

from __future__ import annotations

import pytest

from ostiary.core.redirect_uris import (
    MAX_REDIRECT_URI_LENGTH,
    is_loopback_redirect,
    match_redirect_uri,
    validate_registered_redirect_uri,
)
from ostiary.errors import InvalidRedirectUriError


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/cb",
        "http://127.0.0.1:1/cb",
        "http://[::1]:65535/cb",
        "http://localhost:3000",
        "http://127.0.0.1?x=1",
    ],
)
def test_loopback_redirects(uri: str) -> None:
    assert is_loopback_redirect(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1/cb",
        "http://example.com/cb",
        "http://[::1/cb",
        "http:/127.0.0.1/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1/c b",
        "http://u@127.0.0.1/cb",
        "http:///cb",
        "not a uri",
        "com.example.app:/cb",
    ],
)
def test_not_loopback_redirects(uri: str) -> None:
    assert not is_loopback_redirect(uri)


def test_overlong_redirect_uri_is_refused() -> None:
    uri = "https://app.example.com/" + "a" * MAX_REDIRECT_URI_LENGTH
    with pytest.raises(InvalidRedirectUriError) as exc:
        validate_registered_redirect_uri(uri, "web")
    assert exc.value.description == "redirect_uri is too long"
    assert exc.value.redirectable is False


def test_match_checks_every_registered_entry() -> None:
    registered = ["https://app.example.com/cb", "http://127.0.0.1/other", "http://127.0.0.1/cb"]
    assert match_redirect_uri("http://127.0.0.1:4000/cb", registered)
    assert not match_redirect_uri("http://127.0.0.1:4000/nope", registered)
