"""RFC 9068 JWT access tokens and the token response (RFC 6749 §5.1; OAuth 2.1 §3.2.3).

Access tokens are self-contained so resource servers verify them locally from the JWKS. The
``aud`` claim is always the single RFC 8707 resource of the grant, so a token minted for one
MCP server is refused by every other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from ostiary.core.keys import ACCESS_TOKEN_JWT_TYPE, KeyRing
from ostiary.core.scopes import format_scope


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    issuer: str
    subject: str
    audience: str
    client_id: str
    scopes: tuple[str, ...]
    jti: str
    issued_at: int
    expires_at: int
    #: RFC 9449 §6.1: the DPoP key the token is bound to (``cnf.jkt``), None for Bearer.
    jkt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.audience,
            "client_id": self.client_id,
            "jti": self.jti,
            "iat": self.issued_at,
            "exp": self.expires_at,
        }
        if self.scopes:
            claims["scope"] = format_scope(self.scopes)
        if self.jkt is not None:
            claims["cnf"] = {"jkt": self.jkt}
        return claims


def mint_access_token(ring: KeyRing, claims: AccessTokenClaims) -> str:
    """Sign ``claims`` with the active key: header ``typ: at+jwt`` (RFC 9068 §2.1)."""
    return ring.access_token_signer.sign(claims.to_dict())


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response body (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    #: ``DPoP`` for a DPoP-bound access token (RFC 9449 §5.1), else ``Bearer``.
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.scopes:
            body["scope"] = format_scope(self.scopes)
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def token_type(jkt: str | None) -> str:
    """``DPoP`` for a token bound to a key (RFC 9449 §5.1), else ``Bearer``."""
    return "Bearer" if jkt is None else "DPoP"


def decode_access_token(
    ring: KeyRing, token: str, *, issuer: str, now: int
) -> dict[str, Any] | None:
    """Claims of one of our own live access tokens, or None (bad signature, expired, foreign)."""
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeEncodeError):
        return None
    entry = ring.by_kid.get(str(header.get("kid")))
    if entry is None or header.get("typ") != ACCESS_TOKEN_JWT_TYPE or header.get("alg") != entry[0]:
        return None
    alg, key = entry
    try:
        claims = dict(jwt.decode(token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError):
        return None
    exp = claims.get("exp")
    if claims.get("iss") != issuer or not isinstance(exp, int) or exp <= now:
        return None
    return claims
