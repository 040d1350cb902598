"""Resource indicators: canonical form and audience selection (RFC 8707 §2, §2.1, §2.2).

A ``resource`` is an absolute URI without a fragment (RFC 8707 §2). ostiary binds every grant
to at most one resource, which becomes the access token's ``aud`` (MCP authorization,
"Token Audience Binding"). Comparison uses the canonical form every layer shares
(:func:`ostiary.core.resource_uri.canonical_resource`: scheme and host lowercased, the default
port dropped, path and query kept byte for byte); here, and only here, a single trailing slash is
also ignored when a *request* is matched against the configured resources, because MCP clients
derive the value from the protected resource metadata and servers spell their URL with or
without one. The token's ``aud`` is then the configured entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ostiary.core.resource_uri import canonical_resource
from ostiary.errors import InvalidTargetError
from ostiary.loopback import is_loopback_host

__all__ = ["canonical_resource", "validate_resource_for_grant", "validate_resources"]


def _bad(message: str, value: str) -> InvalidTargetError:
    return InvalidTargetError(message, detail=f"resource {value[:200]!r}")


def _key(canonical: str) -> str:
    """Comparison key: the canonical form without one trailing slash on the path."""
    base, sep, query = canonical.partition("?")
    return base.removesuffix("/") + sep + query


def _check_transport(canonical: str, value: str) -> None:
    parts = urlsplit(canonical)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    raise _bad("resource must be an https URI (http only on loopback)", value)


def validate_resources(values: Sequence[str], *, allowed: Sequence[str] | None) -> str | None:
    """Select the one resource an authorization request is for (RFC 8707 §2.1).

    Args:
        values: Every ``resource`` parameter of the request (it may repeat).
        allowed: The resources this server issues tokens for, or None to accept any
            https (or loopback http) resource.

    Returns:
        None when no resource was requested; otherwise the matching ``allowed`` entry as
        configured, or the canonical form of the request when ``allowed`` is None.

    Raises:
        InvalidTargetError: Malformed, more than one distinct resource, or not served here.
    """
    if not values:
        return None
    canon = [canonical_resource(v) for v in values]
    if len({_key(c) for c in canon}) > 1:
        raise InvalidTargetError("only one resource may be requested per authorization")
    _check_transport(canon[0], values[0])
    if allowed is None:
        return canon[0]
    wanted = _key(canon[0])
    for entry in allowed:
        if _key(canonical_resource(entry)) == wanted:
            return entry
    raise InvalidTargetError(
        "resource is not served by this authorization server", detail=f"resource {values[0]!r}"
    )


def validate_resource_for_grant(requested: Sequence[str], granted: str | None) -> str | None:
    """The resource of a token request, which must be the grant's (RFC 8707 §2.2).

    Args:
        requested: Every ``resource`` parameter of the token request.
        granted: The resource bound to the authorization code or refresh token's grant.

    Returns:
        ``granted`` (its stored spelling) when the request omits ``resource`` or names it.

    Raises:
        InvalidTargetError: The request names a different resource, or several.
    """
    if not requested:
        return granted
    canon = {_key(canonical_resource(v)) for v in requested}
    if len(canon) > 1:
        raise InvalidTargetError("only one resource may be requested per authorization")
    if granted is None:
        raise InvalidTargetError("resource was not part of the original authorization")
    if canon != {_key(canonical_resource(granted))}:
        raise InvalidTargetError(
            "resource does not match the original authorization",
            detail=f"requested {requested[0]!r}, granted {granted!r}",
        )
    return granted
