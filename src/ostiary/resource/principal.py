"""The verified principal, the verifier protocol and the checks both verifiers share.

RFC 8707 §2 / RFC 9068 §4 audience binding (the configured audience in its canonical form, the
token's ``aud`` compared exactly), RFC 7519 §4.1
time claims with leeway, RFC 8414 §3 metadata discovery, and a bounded cache keyed by a hash
of the token (never the token itself).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx

from ostiary.core.resource_uri import canonical_resource
from ostiary.errors import InvalidTargetError, InvalidTokenError, TemporarilyUnavailableError

__all__ = [
    "Principal",
    "TokenVerifier",
    "canonical_resource",
    "fetch_authorization_server_metadata",
]

log = logging.getLogger("ostiary.resource")

HTTP_TIMEOUT_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified access token speaks for. Also a Starlette ``BaseUser``-shaped object.

    Attributes:
        subject: ``sub``: the resource owner (the client itself for client_credentials).
        client_id: The OAuth client the token was issued to.
        scopes: Granted scopes, in token order.
        audience: Every ``aud`` value of the token.
        issuer: ``iss``.
        expires_at: ``exp`` (seconds since the epoch), None when the AS gave none.
        token_id: ``jti`` when present.
        claims: Every claim or introspection member, read-only.
    """

    subject: str
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    issuer: str | None = None
    expires_at: int | None = None
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scope_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: scope checks run on every request.
        object.__setattr__(self, "scope_set", frozenset(self.scopes))

    def has_scopes(self, needed: Iterable[str]) -> bool:
        """True when every scope in ``needed`` was granted (literally; see ScopePolicy)."""
        return self.scope_set.issuperset(needed)

    @property
    def is_authenticated(self) -> bool:
        """Starlette ``BaseUser`` protocol: always true for a verified token."""
        return True

    @property
    def display_name(self) -> str:
        """Starlette ``BaseUser`` protocol: the subject."""
        return self.subject

    @property
    def identity(self) -> str:
        """Starlette ``BaseUser`` protocol: the subject."""
        return self.subject


@runtime_checkable
class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Principal` or refuses it."""

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` for this resource.

        Raises:
            InvalidTokenError: Invalid, expired, revoked, or issued for another resource.
            TemporarilyUnavailableError: The authorization server could not be reached.
        """
        ...


async def fetch_authorization_server_metadata(
    issuer: str, *, http_client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """Fetch and check RFC 8414 metadata for ``issuer`` (path-inserted well-known URL, §3.1).

    Raises:
        TemporarilyUnavailableError: The metadata could not be fetched or parsed.
        ValueError: The document's ``issuer`` differs from ``issuer`` (RFC 8414 §3.3: such
            metadata MUST NOT be used).

    Example:
        >>> import asyncio, httpx
        >>> def authorization_server(request: httpx.Request) -> httpx.Response:
        ...     assert request.url.path == "/.well-known/oauth-authorization-server/tenant"
        ...     issuer = "https://auth.example.com/tenant"
        ...     return httpx.Response(200, json={"issuer": issuer, "jwks_uri": f"{issuer}/jwks"})
        >>> http = httpx.AsyncClient(transport=httpx.MockTransport(authorization_server))
        >>> issuer = "https://auth.example.com/tenant"
        >>> meta = asyncio.run(fetch_authorization_server_metadata(issuer, http_client=http))
        >>> meta["jwks_uri"]
        'https://auth.example.com/tenant/jwks'
    """
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    url = urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )
    client = http_client or httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
        document = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise TemporarilyUnavailableError(detail=f"AS metadata fetch failed: {exc!r}") from exc
    finally:
        if http_client is None:
            await client.aclose()
    if not isinstance(document, dict):
        raise TemporarilyUnavailableError(detail=f"AS metadata at {url} unusable")
    if document.get("issuer") != issuer:
        raise ValueError(f"metadata issuer {document.get('issuer')!r} is not {issuer!r}")
    return document


def _audiences(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return tuple(dict.fromkeys(s for s in scope.split(" ") if s))
    scp = claims.get("scp")  # common non-standard list form (Entra ID, Okta)
    if isinstance(scp, list):
        return tuple(dict.fromkeys(s for s in scp if isinstance(s, str) and s))
    return ()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _AudienceCheck:
    """Whether a token's ``aud`` names this resource (RFC 9068 §4, RFC 8707 §2).

    The canonical form (:func:`canonical_resource`) applies to the *configured* audience only:
    ``aud`` must equal it, or the audience exactly as configured, with no normalisation of
    its own (``/mcp/`` is not ``/mcp``, ``MCP.example.com`` is not ``mcp.example.com``). An
    audience that is not a URI (some authorization servers' API identifiers) is compared as is.
    """

    def __init__(self, audience: str) -> None:
        self.audience = audience
        try:
            canonical = canonical_resource(audience)
        except InvalidTargetError:
            canonical = audience
        self.accepted = frozenset((audience, canonical))

    def __call__(self, audiences: Sequence[str]) -> bool:
        return any(aud in self.accepted for aud in audiences)


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> int:
    """Validate ``exp`` (required), ``nbf`` and ``iat``; return ``exp``."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidTokenError(detail="exp missing or not a number")
    if now > exp + leeway:
        raise InvalidTokenError("The access token expired.", detail=f"exp={exp} now={now:.0f}")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidTokenError(detail=f"{name} not a number")
        if value > now + leeway:
            raise InvalidTokenError(
                "The access token is not valid yet.", detail=f"{name}={value} now={now:.0f}"
            )
    return int(exp)
