"""``WWW-Authenticate: Bearer`` and ``DPoP`` challenges (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).

A resource server answers 401 and 403 with a ``Bearer`` challenge. Three shapes exist:

* no credentials were sent: a *bare* challenge, with no ``error`` attribute (RFC 6750 §3.1:
  "the resource server SHOULD NOT include an error code or other error information"), still
  carrying ``resource_metadata`` (RFC 9728 §5.1) and ``scope`` when the endpoint knows it;
* a token was sent but is unusable: ``error="invalid_token"`` (401);
* the token lacks a scope: ``error="insufficient_scope"`` (403) naming *every* scope the
  operation needs in one challenge (MCP authorization, "Server Scope Management").

Attribute order on the wire is fixed (``error``, ``error_description``, ``scope``,
``resource_metadata``, then ``realm``) so tests can assert exact header bytes. Every value is
a quoted-string (RFC 9110 §5.6.4); ``"`` and ``\\`` are escaped and control characters are
refused, so no caller can inject a header line.

Parsing is :mod:`ostiary.www_authenticate`'s one RFC 9110 parser (the MCP client reads
challenges with it too); :func:`parse_bearer_challenge` reads its strict result back into a
:class:`BearerChallenge`, so a built challenge round-trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ostiary.errors import InsufficientScopeError, OAuthError
from ostiary.www_authenticate import (
    Challenge,
    find_challenge,
    parse_www_authenticate,
    quote_string,
)

__all__ = [
    "BearerChallenge",
    "Challenge",
    "build_bearer_challenge",
    "build_dpop_challenge",
    "challenge_for_error",
    "parse_bearer_challenge",
    "parse_www_authenticate",
    "quote_string",
]


@dataclass(frozen=True, slots=True)
class BearerChallenge:
    """One ``Bearer`` challenge, as built for the wire or parsed from it.

    Attributes:
        resource_metadata: RFC 9728 §5.1 URL of the protected resource metadata.
        scopes: Scopes the request needs (RFC 6750 §3 ``scope``), in order.
        error: ``invalid_request``, ``invalid_token`` or ``insufficient_scope``; None when
            no credentials were sent.
        error_description: Human-readable sentence (RFC 6749 charset).
        realm: Optional protection space (RFC 9110 §11.5).
        extra: Any other parameters (parsed challenges only; never emitted).
    """

    resource_metadata: str | None = None
    scopes: tuple[str, ...] = ()
    error: str | None = None
    error_description: str | None = None
    realm: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> str:
        """The header value, e.g. ``Bearer error="invalid_token", resource_metadata="…"``."""
        return build_bearer_challenge(
            resource_metadata=self.resource_metadata,
            scopes=self.scopes,
            error=self.error,
            error_description=self.error_description,
            realm=self.realm,
        )


def build_bearer_challenge(
    *,
    resource_metadata: str | None,
    scopes: Iterable[str] = (),
    error: str | None = None,
    error_description: str | None = None,
    realm: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate`` value carrying one ``Bearer`` challenge.

    Args:
        resource_metadata: PRM URL (RFC 9728 §5.1); None leaves the attribute out.
        scopes: Scopes to name in ``scope``; empty leaves the attribute out. Duplicates are
            dropped, order is kept.
        error: RFC 6750 §3.1 error code; None for a bare challenge.
        error_description: Public sentence; only sent together with ``error``.
        realm: Optional ``realm``.

    Returns:
        The header value, starting with ``Bearer``.

    Raises:
        ValueError: A value would need a character no header may carry.

    Example:
        >>> build_bearer_challenge(
        ...     resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        ...     scopes=("mcp:read",),
        ... )
        'Bearer scope="mcp:read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
    """
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
        if error_description:
            params.append(("error_description", error_description))
    scope_value = " ".join(dict.fromkeys(scopes))
    if scope_value:
        params.append(("scope", scope_value))
    if resource_metadata is not None:
        params.append(("resource_metadata", resource_metadata))
    if realm is not None:
        params.append(("realm", realm))
    if not params:
        return "Bearer"
    return "Bearer " + ", ".join(f"{name}={quote_string(value)}" for name, value in params)


def build_dpop_challenge(
    *,
    algs: Iterable[str],
    resource_metadata: str | None = None,
    scopes: Iterable[str] = (),
    error: str | None = None,
    error_description: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate`` value carrying one ``DPoP`` challenge (RFC 9449 §7.1).

    Same attributes and order as :func:`build_bearer_challenge`, then ``algs`` (the proof
    algorithms the resource server accepts, space-separated).

    Example:
        >>> build_dpop_challenge(algs=("ES256", "EdDSA"), error="invalid_dpop_proof")
        'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"'
    """
    bearer = build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=scopes,
        error=error,
        error_description=error_description,
    )
    params = bearer.removeprefix("Bearer").strip()
    algs_param = f"algs={quote_string(' '.join(algs))}"
    return f"DPoP {params}, {algs_param}" if params else f"DPoP {algs_param}"


def challenge_for_error(
    error: OAuthError | None,
    *,
    resource_metadata: str | None,
    scopes: Iterable[str] = (),
) -> str:
    """The challenge that goes with ``error`` (None: no credentials were sent).

    For :class:`InsufficientScopeError` the ``scope`` attribute names the error's
    ``required_scopes`` when it has any, else ``scopes``.

    Example:
        >>> from ostiary.errors import InvalidTokenError
        >>> challenge_for_error(InvalidTokenError("The access token expired."),
        ...                     resource_metadata="https://rs/.well-known/oauth-protected-resource")
        'Bearer error="invalid_token", error_description="The access token expired.", resource_metadata="https://rs/.well-known/oauth-protected-resource"'
    """
    if error is None:
        return build_bearer_challenge(resource_metadata=resource_metadata, scopes=scopes)
    needed = tuple(scopes)
    if isinstance(error, InsufficientScopeError) and error.required_scopes:
        needed = error.required_scopes
    return build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=needed,
        error=error.error,
        error_description=error.description,
    )


def parse_bearer_challenge(value: str) -> BearerChallenge | None:
    """The first ``Bearer`` challenge in a ``WWW-Authenticate`` value, or None.

    Raises:
        ValueError: The value is not valid challenge syntax.

    Example:
        >>> parse_bearer_challenge('Bearer error="insufficient_scope", scope="a b"').scopes
        ('a', 'b')
    """
    challenge = find_challenge(parse_www_authenticate(value), "bearer")
    if challenge is None:
        return None
    params = dict(challenge.params)
    scope = params.pop("scope", "")
    return BearerChallenge(
        resource_metadata=params.pop("resource_metadata", None),
        scopes=tuple(dict.fromkeys(s for s in scope.split(" ") if s)),
        error=params.pop("error", None),
        error_description=params.pop("error_description", None),
        realm=params.pop("realm", None),
        extra=params,
    )
