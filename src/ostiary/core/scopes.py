"""Scope grammar, parsing and narrowing (RFC 6749 §3.3; OAuth 2.1 §1.4.1, §4.3.1).

``scope = scope-token *( SP scope-token )`` with ``scope-token = 1*( %x21 / %x23-5B / %x5D-7E )``.

Parsing is deliberately a little more tolerant than the ABNF on *separators only*: runs of
spaces and leading or trailing spaces are accepted (some clients join lists carelessly and
refusing them buys no security). Every other character outside the token set, including tabs
and newlines, is an ``invalid_scope`` error. Duplicates are dropped, first occurrence wins, so
the parsed tuple is a stable, ordered set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ostiary.errors import InvalidScopeError

_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
# Shown on the wire, so it must itself stay within the RFC 6749 description charset.
_MAX_LISTED = 10


def is_scope_token(value: str) -> bool:
    """True when ``value`` is one RFC 6749 §3.3 scope-token."""
    return _TOKEN.match(value) is not None


def _listed(scopes: Iterable[str]) -> str:
    items = list(scopes)
    shown = " ".join(items[:_MAX_LISTED])
    return shown + (" ..." if len(items) > _MAX_LISTED else "")


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Parse a ``scope`` parameter into an ordered tuple of distinct scope tokens.

    Args:
        value: The raw parameter, or None when absent.

    Returns:
        The scope tokens in request order without duplicates; ``()`` for None or "".

    Raises:
        InvalidScopeError: A token contains a character RFC 6749 §3.3 forbids.

    Example:
        >>> parse_scope("mcp:read  mcp:write mcp:read")
        ('mcp:read', 'mcp:write')
    """
    if not value:
        return ()
    result: dict[str, None] = {}
    for token in value.split(" "):
        if token == "":
            continue
        if not is_scope_token(token):
            raise InvalidScopeError(
                "scope must be space-separated tokens of printable ASCII characters",
                detail=f"bad scope token {token!r}",
            )
        result.setdefault(token, None)
    return tuple(result)


def format_scope(scopes: Iterable[str]) -> str:
    """Join scope tokens into a ``scope`` parameter value (RFC 6749 §3.3), dropping duplicates.

    Example:
        >>> format_scope(("a", "b", "a"))
        'a b'
    """
    return " ".join(dict.fromkeys(scopes))


def resolve_requested_scopes(
    requested: tuple[str, ...],
    *,
    client_scope: str | None,
    supported: Sequence[str],
    default: Sequence[str],
    registered_scope_is_ceiling: bool = True,
) -> tuple[str, ...]:
    """Decide the scopes of an authorization or client_credentials request (RFC 6749 §3.3).

    An empty request falls back to the client's registered ``scope`` (minus any scope the
    server no longer supports) when it has one, else to the server's default. Every requested
    scope must be supported by the server and, when the client registered a ``scope``, be
    part of it.

    Args:
        requested: The parsed ``scope`` parameter.
        client_scope: The client's registered ``scope`` metadata (RFC 7591 §2), or None.
        supported: Every scope the server knows.
        default: Scopes granted when the request names none and the client registered none.
        registered_scope_is_ceiling: When False, the registered ``scope`` is only the default
            for an empty request, not a limit (self-registered clients, see
            ``core.clients.registered_scope_is_ceiling``).

    Returns:
        The scopes to authorize, in request order.

    Raises:
        InvalidScopeError: Naming the unsupported or not-registered scopes.
    """
    registered = parse_scope(client_scope) if client_scope else None
    if not requested:
        if registered is None:
            return tuple(dict.fromkeys(default))
        # A scope the server stopped supporting since registration is silently dropped.
        return tuple(s for s in registered if s in supported)
    unsupported = [s for s in requested if s not in supported]
    if unsupported:
        raise InvalidScopeError(f"unsupported scope: {_listed(unsupported)}")
    if registered is not None and registered_scope_is_ceiling:
        outside = [s for s in requested if s not in registered]
        if outside:
            raise InvalidScopeError(f"scope not registered for this client: {_listed(outside)}")
    return requested


def narrow_scopes(requested: tuple[str, ...], granted: tuple[str, ...]) -> tuple[str, ...]:
    """Scopes for a refresh request (RFC 6749 §6; OAuth 2.1 §4.3.1).

    The client may ask for fewer scopes than the grant holds, never more.

    Args:
        requested: The parsed ``scope`` parameter of the refresh request.
        granted: The scopes of the grant being refreshed.

    Returns:
        ``granted`` when nothing was requested, otherwise ``requested``.

    Raises:
        InvalidScopeError: A requested scope was not part of the original grant.
    """
    if not requested:
        return granted
    extra = [s for s in requested if s not in granted]
    if extra:
        raise InvalidScopeError(f"scope exceeds the original grant: {_listed(extra)}")
    return requested
