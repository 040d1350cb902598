"""Every place that tolerates plain http on loopback asks the one rule (ostiary.loopback).

The host table is ``tests/vectors/data/loopback_host_cases.json``; here each case is put in a
URL and handed to every caller (RFC 8252 §7.3 redirects, RFC 8707 resources, RFC 7591 URL
metadata, a dev-mode issuer, the client's discovery, the resource server's CORS and ``Host``
allow-lists), which must all answer as :func:`ostiary.loopback.is_loopback_host` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ostiary.client.discovery import is_secure_url
from ostiary.core.redirect_uris import is_loopback_redirect, validate_registered_redirect_uri
from ostiary.core.registration_metadata import _web_url
from ostiary.core.resource import validate_resources
from ostiary.core.urls import split_url
from ostiary.errors import InvalidClientMetadataError, InvalidRedirectUriError, InvalidTargetError
from ostiary.loopback import LOOPBACK_HOSTS
from ostiary.resource.cors import default_allowed_hosts, default_allowed_origins
from ostiary.server.pages import native_redirect_warning
from ostiary.settings import issuer_problem

_CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "data" / "loopback_host_cases.json").read_text(
        encoding="utf-8"
    )
)["hosts"]


def _authority(host: str) -> str | None:
    """``host`` as written in a URL, or None when it cannot be one (no host, a port, space)."""
    if not host or host != host.strip() or host.startswith("localhost:"):
        return None
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


_URL_CASES = [
    pytest.param(authority, case["loopback"], id=repr(case["host"]))
    for case in _CASES
    if (authority := _authority(case["host"])) is not None
]


def _accepts(check: Any, *args: Any, error: type[Exception], **kwargs: Any) -> bool:
    try:
        check(*args, **kwargs)
    except error:
        return False
    return True


@pytest.mark.parametrize(("authority", "loopback"), _URL_CASES)
def test_every_caller_agrees_with_the_one_rule(authority: str, loopback: bool) -> None:
    base = f"http://{authority}:8000"
    assert is_secure_url(f"{base}/token") is loopback
    assert is_loopback_redirect(f"{base}/cb") is loopback
    assert (
        _accepts(
            validate_registered_redirect_uri, f"{base}/cb", "native", error=InvalidRedirectUriError
        )
        is loopback
    )
    assert (
        _accepts(validate_resources, [f"{base}/mcp"], allowed=None, error=InvalidTargetError)
        is loopback
    )
    assert (
        _accepts(_web_url, "client_uri", f"{base}/", error=InvalidClientMetadataError) is loopback
    )
    if split_url(base) is not None:  # the consent page sees only registered (valid) URIs
        assert (native_redirect_warning("native", f"{base}/cb") is None) is loopback


@pytest.mark.parametrize(("authority", "loopback"), _URL_CASES)
def test_allow_lists_widen_only_for_loopback(authority: str, loopback: bool) -> None:
    resource = f"http://{authority}:8000/mcp"
    try:
        hosts = default_allowed_hosts(resource)
    except ValueError:  # urlsplit refuses the authority: nothing to widen
        assert not loopback
        return
    assert (len(hosts) > 1) is loopback
    assert (len(default_allowed_origins(resource)) > 1) is loopback


@pytest.mark.parametrize(("authority", "loopback"), _URL_CASES)
def test_dev_issuer_is_http_only_on_loopback(authority: str, loopback: bool) -> None:
    try:
        problem = issuer_problem(f"http://{authority}:8000", dev=True)
    except ValueError:  # urlsplit refuses it; Settings reports that as a validation error
        assert not loopback
        return
    assert (problem is None) is loopback


def test_a_local_resource_allows_every_loopback_spelling() -> None:
    """An Inspector on http://localhost:6274 may call a server on http://127.0.0.1:8000."""
    assert default_allowed_hosts("http://127.0.0.1:8000/mcp") == (
        "127.0.0.1:8000",
        *(f"{host}:*" for host in LOOPBACK_HOSTS),
    )
    assert default_allowed_origins("http://[::1]:8000/mcp", ["https://app.example"]) == [
        "http://[::1]:8000",
        "https://app.example",
        *(f"http://{host}:*" for host in LOOPBACK_HOSTS),
    ]
