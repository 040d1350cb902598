"""PKCE S256 (RFC 7636 §4; OAuth 2.1 §4.1.1)."""

from __future__ import annotations

import pytest

from ostiary.core.pkce import s256, validate_code_challenge, verify_code_verifier
from ostiary.errors import InvalidGrantError, InvalidRequestError

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_valid_challenge_is_returned_unchanged() -> None:
    assert validate_code_challenge(CHALLENGE, "S256") == CHALLENGE


@pytest.mark.parametrize("challenge", [None, ""])
def test_missing_challenge_is_invalid_request(challenge: str | None) -> None:
    """OAuth 2.1 §4.1.1: PKCE is mandatory for every client."""
    with pytest.raises(InvalidRequestError) as exc:
        validate_code_challenge(challenge, "S256")
    assert exc.value.error == "invalid_request"
    assert exc.value.description == "code_challenge is required: PKCE with S256 is mandatory"


@pytest.mark.parametrize("method", [None, "", "plain", "s256", "S512"])
def test_method_other_than_s256_is_refused(method: str | None) -> None:
    """RFC 7636 §4.3 defaults a missing method to plain; OAuth 2.1 lets us refuse plain."""
    with pytest.raises(InvalidRequestError) as exc:
        validate_code_challenge(CHALLENGE, method)
    assert exc.value.description == "code_challenge_method must be S256"


@pytest.mark.parametrize(
    "challenge",
    [CHALLENGE[:-1], CHALLENGE + "A", CHALLENGE + "=", CHALLENGE[:-1] + "+", CHALLENGE[:-1] + "/"],
)
def test_malformed_challenge_is_invalid_request(challenge: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        validate_code_challenge(challenge, "S256")
    assert exc.value.description == "code_challenge must be 43 base64url characters without padding"


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert s256(VERIFIER) == CHALLENGE


def test_matching_verifier_passes() -> None:
    verify_code_verifier(VERIFIER, CHALLENGE)


@pytest.mark.parametrize("verifier", [None, ""])
def test_missing_verifier_is_invalid_request(verifier: str | None) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        verify_code_verifier(verifier, CHALLENGE)
    assert exc.value.description == "code_verifier is required"


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "a" * 42 + "é", "a" * 42 + "+"],
)
def test_malformed_verifier_is_invalid_grant(verifier: str) -> None:
    """RFC 7636 §4.1: 43 to 128 characters of the unreserved set."""
    with pytest.raises(InvalidGrantError) as exc:
        verify_code_verifier(verifier, CHALLENGE)
    assert exc.value.error == "invalid_grant"
    assert exc.value.description == (
        "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
    )


@pytest.mark.parametrize("verifier", ["a" * 43, "~._-" * 32])
def test_boundary_length_verifiers_are_accepted(verifier: str) -> None:
    verify_code_verifier(verifier, s256(verifier))


def test_mismatched_verifier_is_invalid_grant() -> None:
    """RFC 7636 §4.6: the server MUST NOT issue a token when the values differ."""
    with pytest.raises(InvalidGrantError) as exc:
        verify_code_verifier("x" * 43, CHALLENGE)
    assert exc.value.description == "code_verifier does not match the code_challenge"
