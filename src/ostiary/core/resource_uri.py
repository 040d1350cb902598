"""One canonical spelling of resource URIs (RFC 8707 §2; RFC 3986 §6.2.2; MCP server URI).

One rule for every layer: the authorization server compares requested resources with it, a
resource server applies it to its *configured* audience, the client to the MCP server URL it
was given and to the PRM ``resource``. It is never applied to a token's ``aud``, which a
resource server compares exactly with what it expects (RFC 9068 §4). Pure: no I/O, no settings,
importable from ``ostiary.resource`` and ``ostiary.client`` without the authorization server.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from ostiary.core.urls import split_url
from ostiary.errors import InvalidTargetError

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


def _bad(message: str, value: str) -> InvalidTargetError:
    return InvalidTargetError(message, detail=f"resource {value[:200]!r}")


def canonical_resource(value: str) -> str:
    """The canonical spelling of a resource indicator (RFC 8707 §2; RFC 3986 §6.2.2).

    Scheme and host are lowercased and a default port is removed; the path and query are kept
    byte for byte, a trailing slash included (``/mcp`` and ``/mcp/`` are different resources).

    Args:
        value: A resource URI (a ``resource`` parameter, a configured audience, a server URL).

    Returns:
        ``value`` with scheme and host lowercased and a default port removed.

    Raises:
        InvalidTargetError: ``value`` is not an absolute URI, or has a fragment or userinfo.

    Example:
        >>> canonical_resource("HTTPS://MCP.Example.com:443/Mcp?x=1")
        'https://mcp.example.com/Mcp?x=1'
    """
    if "#" in value:
        raise _bad("resource must not contain a fragment", value)
    if any(ch.isspace() for ch in value) or not value.isascii():
        raise _bad("resource must be an absolute URI", value)
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "Invalid IPv6 URL" for an unbalanced or bogus bracket host
        raise _bad("resource must be an absolute URI", value) from None
    if not parts.scheme or not parts.netloc or not parts.hostname:
        raise _bad("resource must be an absolute URI", value)
    if "@" in parts.netloc:
        raise _bad("resource must not contain userinfo", value)
    if split_url(value) is None:
        raise _bad("resource has an invalid port", value)
    port = parts.port
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lowercased, brackets removed
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    query = f"?{parts.query}" if "?" in value else ""
    return f"{scheme}://{netloc}{parts.path}{query}"
