"""Spec vectors kept as data, one parametrized test per source (RFC 7636 App. B, RFC 8252 §7)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ostiary.core.pkce import s256, validate_code_challenge, verify_code_verifier
from ostiary.core.redirect_uris import match_redirect_uri, validate_registered_redirect_uri
from ostiary.errors import InvalidRedirectUriError
from ostiary.loopback import LOOPBACK_HOSTS, is_loopback_host

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


PKCE = _load("rfc7636_appendix_b.json")
REDIRECTS = _load("redirect_uri_cases.json")
LOOPBACK = _load("loopback_host_cases.json")


def test_rfc7636_appendix_b_s256() -> None:
    """RFC 7636 Appendix B: the published verifier, hash octets and challenge."""
    verifier = PKCE["code_verifier"]
    assert list(base64.urlsafe_b64decode(verifier + "=")) == PKCE["verifier_octets"]
    assert list(hashlib.sha256(verifier.encode("ascii")).digest()) == PKCE["sha256_octets"]
    assert s256(verifier) == PKCE["code_challenge"]
    assert validate_code_challenge(PKCE["code_challenge"], "S256") == PKCE["code_challenge"]
    verify_code_verifier(verifier, PKCE["code_challenge"])


@pytest.mark.parametrize("case", REDIRECTS["registration"], ids=lambda c: f"{c['type']}:{c['uri']}")
def test_redirect_uri_registration(case: dict[str, Any]) -> None:
    if case["error"] is None:
        validate_registered_redirect_uri(case["uri"], case["type"])
        return
    with pytest.raises(InvalidRedirectUriError) as exc:
        validate_registered_redirect_uri(case["uri"], case["type"])
    assert exc.value.error == "invalid_redirect_uri"
    assert exc.value.description == case["error"]


@pytest.mark.parametrize(
    "case", REDIRECTS["matching"], ids=lambda c: f"{c['requested']}-{c['registered']}"
)
def test_redirect_uri_matching(case: dict[str, Any]) -> None:
    assert match_redirect_uri(case["requested"], case["registered"]) is case["match"]


@pytest.mark.parametrize("case", LOOPBACK["hosts"], ids=lambda c: repr(c["host"]))
def test_loopback_host(case: dict[str, Any]) -> None:
    """RFC 8252 §7.3/§8.3, RFC 6761 §6.3: the one loopback rule (ostiary.loopback)."""
    assert is_loopback_host(case["host"]) is case["loopback"], case["why"]


def test_listed_loopback_spellings_are_loopback() -> None:
    assert all(is_loopback_host(host) for host in LOOPBACK_HOSTS)
