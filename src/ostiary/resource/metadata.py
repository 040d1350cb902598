"""Protected resource metadata document and well-known route (RFC 9728 §2, §3; MCP discovery).

An MCP server publishes where its authorization servers are. RFC 9728 §3.1 derives the
metadata URL by inserting ``/.well-known/oauth-protected-resource`` between the host and the
path of the resource identifier, so ``https://mcp.example.com/mcp`` is described at
``https://mcp.example.com/.well-known/oauth-protected-resource/mcp``. The MCP specification
lets clients fall back to the root form ``/.well-known/oauth-protected-resource``; we serve
it too unless told not to (several MCP endpoints on one origin would make it ambiguous).

The document is rendered once at start-up: it is static, public, and fetched by every new
client, so the route only copies bytes. It carries ``Access-Control-Allow-Origin: *`` so
browser-based MCP clients can discover it (the document is public by design).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ostiary.errors import ConfigurationError

__all__ = [
    "PRM_WELL_KNOWN_PATH",
    "build_protected_resource_metadata",
    "protected_resource_metadata_routes",
    "protected_resource_metadata_url",
    "well_known_paths",
]

PRM_WELL_KNOWN_PATH: Final = "/.well-known/oauth-protected-resource"
#: MCP authorization, "Refresh Tokens": servers SHOULD NOT advertise ``offline_access``.
_NEVER_ADVERTISED: Final = frozenset({"offline_access"})
_CACHE_CONTROL: Final = "public, max-age=300"


def _validate_resource(resource: str) -> tuple[str, str, str, str]:
    parts = urlsplit(resource)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigurationError(f"resource must be an absolute http(s) URL, got {resource!r}")
    if parts.fragment or "#" in resource:
        raise ConfigurationError(f"resource must not have a fragment (RFC 9728 §1.2): {resource!r}")
    return parts.scheme, parts.netloc, parts.path, parts.query


def protected_resource_metadata_url(resource: str) -> str:
    """The RFC 9728 §3.1 metadata URL for a resource identifier.

    Args:
        resource: The canonical MCP server URL (RFC 8707 resource identifier).

    Returns:
        The path-inserted well-known URL; the root form when the resource has no path.

    Raises:
        ConfigurationError: ``resource`` is not an absolute http(s) URL without fragment.

    Example:
        >>> protected_resource_metadata_url("https://mcp.example.com/mcp")
        'https://mcp.example.com/.well-known/oauth-protected-resource/mcp'
        >>> protected_resource_metadata_url("https://mcp.example.com/")
        'https://mcp.example.com/.well-known/oauth-protected-resource'
    """
    scheme, netloc, path, query = _validate_resource(resource)
    # RFC 9728 §3.1: a terminating "/" after the host is removed before insertion.
    suffix = "" if path in ("", "/") else path
    return urlunsplit((scheme, netloc, PRM_WELL_KNOWN_PATH + suffix, query, ""))


def well_known_paths(resource: str, *, include_root: bool = True) -> tuple[str, ...]:
    """Local paths the metadata is served at: path-inserted first, then (optionally) root.

    Example:
        >>> well_known_paths("https://mcp.example.com/mcp")
        ('/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource')
    """
    path = urlsplit(protected_resource_metadata_url(resource)).path
    if include_root and path != PRM_WELL_KNOWN_PATH:
        return (path, PRM_WELL_KNOWN_PATH)
    return (path,)


def build_protected_resource_metadata(
    resource: str,
    authorization_servers: Sequence[str],
    scopes_supported: Sequence[str] = (),
    *,
    resource_name: str | None = None,
    resource_documentation: str | None = None,
    bearer_methods_supported: Sequence[str] = ("header",),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the RFC 9728 §2 document for an MCP server.

    Args:
        resource: Canonical MCP server URL; clients compare it to the URL they connect to.
        authorization_servers: Issuer URLs; MCP requires at least one.
        scopes_supported: Scopes a client needs for basic use. ``offline_access`` is dropped
            (MCP: it belongs to the authorization server, not the resource).
        resource_name: Human-readable name shown by clients.
        resource_documentation: URL of developer documentation.
        bearer_methods_supported: RFC 6750 methods; ``header`` only, since OAuth 2.1 §5.2
            forbids the query string and we do not read form bodies.
        extra: Further members (e.g. ``resource_policy_uri``); cannot override the above.

    Returns:
        A JSON-ready dict, members in a stable order.

    Raises:
        ConfigurationError: No authorization server, or an invalid ``resource``.

    Example:
        >>> build_protected_resource_metadata(
        ...     "https://mcp.example.com/mcp", ["https://auth.example.com"], ["mcp:read"]
        ... )["scopes_supported"]
        ['mcp:read']
    """
    _validate_resource(resource)
    if not authorization_servers:
        raise ConfigurationError("authorization_servers must list at least one issuer (MCP)")
    document: dict[str, Any] = dict(extra or {})
    document.update(
        {
            "resource": resource,
            "authorization_servers": list(dict.fromkeys(authorization_servers)),
            "bearer_methods_supported": list(bearer_methods_supported),
        }
    )
    scopes = [s for s in dict.fromkeys(scopes_supported) if s not in _NEVER_ADVERTISED]
    if scopes:
        document["scopes_supported"] = scopes
    if resource_name is not None:
        document["resource_name"] = resource_name
    if resource_documentation is not None:
        document["resource_documentation"] = resource_documentation
    return document


class _MetadataEndpoint:
    """Serves pre-rendered metadata bytes for GET/HEAD and answers CORS preflight."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.body = json.dumps(document, separators=(",", ":")).encode()

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                    "Access-Control-Max-Age": "86400",
                },
            )
        return Response(
            self.body,
            media_type="application/json",
            headers={"Cache-Control": _CACHE_CONTROL, "Access-Control-Allow-Origin": "*"},
        )


def protected_resource_metadata_routes(
    document: Mapping[str, Any], *, include_root: bool = True
) -> list[Route]:
    """Starlette routes serving ``document`` at its well-known path(s).

    Args:
        document: From :func:`build_protected_resource_metadata`; its ``resource`` decides
            the path.
        include_root: Also serve ``/.well-known/oauth-protected-resource`` (MCP fallback).

    Returns:
        Routes to place *before* any catch-all mount of the MCP app.

    Example:
        >>> doc = build_protected_resource_metadata("https://rs.example/mcp", ["https://as.example"])
        >>> [r.path for r in protected_resource_metadata_routes(doc)]
        ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']
    """
    endpoint = _MetadataEndpoint(document)
    return [
        Route(path, endpoint.handle, methods=["GET", "HEAD", "OPTIONS"])
        for path in well_known_paths(str(document["resource"]), include_root=include_root)
    ]
