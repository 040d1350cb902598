"""PKCE code challenge and verifier checks (RFC 7636 §4.1-§4.6). S256 only, as OAuth 2.1 requires.

OAuth 2.1 §4.1.1 makes PKCE mandatory and says a server must not accept ``plain`` unless the
client cannot do S256. Every MCP client can, so ``plain`` and a missing method (which RFC 7636
§4.3 defaults to ``plain``) are refused outright.
"""

from __future__ import annotations

import base64
import hashlib
import re

from ostiary.core.secrets import secrets_equal
from ostiary.errors import InvalidGrantError, InvalidRequestError

#: The only code_challenge_method ostiary accepts.
S256 = "S256"

# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding is always 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# RFC 7636 §4.1: code-verifier = 43*128unreserved (ALPHA / DIGIT / "-" / "." / "_" / "~")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def validate_code_challenge(challenge: str | None, method: str | None) -> str:
    """Validate the PKCE parameters of an authorization request (RFC 7636 §4.3, §4.4.1).

    Args:
        challenge: The ``code_challenge`` parameter, or None when absent.
        method: The ``code_challenge_method`` parameter, or None when absent.

    Returns:
        The challenge, unchanged, to store with the authorization code.

    Raises:
        InvalidRequestError: The challenge is missing or malformed, or the method is not S256.

    Example:
        >>> validate_code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256")
        'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    if not challenge:
        raise InvalidRequestError("code_challenge is required: PKCE with S256 is mandatory")
    if method != S256:
        # RFC 7636 §4.3: a missing method means "plain"; OAuth 2.1 §4.1.1 lets us refuse it.
        raise InvalidRequestError("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequestError(
            "code_challenge must be 43 base64url characters without padding",
            detail=f"challenge length {len(challenge)}",
        )
    return challenge


def s256(verifier: str) -> str:
    """The S256 challenge for ``verifier``: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).

    Example:
        >>> s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_code_verifier(verifier: str) -> bool:
    """True when ``verifier`` follows the RFC 7636 §4.1 grammar (43-128 unreserved chars)."""
    return _VERIFIER.match(verifier) is not None


def verify_code_verifier(verifier: str | None, challenge: str) -> None:
    """Check a token request's ``code_verifier`` against the stored challenge (RFC 7636 §4.6).

    Args:
        verifier: The ``code_verifier`` form parameter, or None when absent.
        challenge: The S256 challenge stored with the authorization code.

    Raises:
        InvalidRequestError: The verifier is missing.
        InvalidGrantError: The verifier is malformed or does not match the challenge.
    """
    if verifier is None or verifier == "":
        raise InvalidRequestError("code_verifier is required")
    if not is_valid_code_verifier(verifier):
        raise InvalidGrantError(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            detail=f"verifier length {len(verifier)}",
        )
    # RFC 7636 §4.6 compares the derived value; do it in constant time.
    if not secrets_equal(s256(verifier), challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge")
