"""PRM and authorization server metadata discovery (RFC 9728 §3; RFC 8414 §3; OIDC Discovery §4).

Sans-IO: this module says *which* URLs to try, in the order the MCP authorization spec
(2026-07-28, "Authorization Server Discovery") requires, and *whether* a fetched document
may be used. The HTTP requests themselves are made by :mod:`ostiary.client.auth`.

Order of protected resource metadata (PRM) candidates:

1. the ``resource_metadata`` URL from the ``WWW-Authenticate`` challenge, when present;
2. the path-inserted well-known URL (``/.well-known/oauth-protected-resource/<path>``);
3. the root well-known URL (``/.well-known/oauth-protected-resource``).

Order of authorization server (AS) metadata candidates for issuer ``https://as/tenant``:
RFC 8414 path-inserted, OIDC path-inserted, OIDC path-appended; for a host-only issuer,
RFC 8414 root then OIDC root.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ostiary.core.resource_uri import canonical_resource as shared_canonical_resource
from ostiary.core.urls import split_url
from ostiary.errors import DiscoveryError, InvalidTargetError
from ostiary.loopback import is_loopback_host

__all__ = [
    "AuthorizationServerMetadata",
    "ProtectedResourceMetadata",
    "ResourceMismatchError",
    "as_metadata_urls",
    "canonical_resource",
    "is_resource_allowed",
    "is_secure_url",
    "parse_as_metadata",
    "parse_prm",
    "prm_urls",
    "require_pkce_s256",
    "require_secure_urls",
]


class ResourceMismatchError(DiscoveryError):
    """PRM describes another resource (RFC 9728 §3.3); the flow must stop, not try further.

    Defined here until ``ostiary.errors`` gains it.
    """


PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"


class ProtectedResourceMetadata(BaseModel):
    """RFC 9728 §2 protected resource metadata (the fields a client uses)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    resource: str
    authorization_servers: list[str] = Field(min_length=1)
    scopes_supported: list[str] | None = None
    bearer_methods_supported: list[str] | None = None


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 §2 authorization server metadata (the fields a client uses)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    issuer: str
    authorization_endpoint: str | None = None
    token_endpoint: str
    registration_endpoint: str | None = None
    scopes_supported: list[str] | None = None
    response_types_supported: list[str] | None = None
    grant_types_supported: list[str] | None = None
    code_challenge_methods_supported: list[str] | None = None
    token_endpoint_auth_methods_supported: list[str] | None = None
    token_endpoint_auth_signing_alg_values_supported: list[str] | None = None
    authorization_response_iss_parameter_supported: bool = False
    client_id_metadata_document_supported: bool = False
    revocation_endpoint: str | None = None
    dpop_signing_alg_values_supported: list[str] | None = None


def _origin(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path


def canonical_resource(url: str) -> str:
    """The canonical resource URI of an MCP server URL (RFC 8707 §2; MCP "Canonical Server URI").

    The rule is :func:`ostiary.core.resource_uri.canonical_resource`, the one the authorization
    server and the resource server apply: scheme and host lowercased, the default port
    dropped, path (a trailing slash included) and query kept.

    Args:
        url: The MCP server URL the user configured, or a PRM ``resource``.

    Returns:
        The URI to compare against PRM ``resource`` and to send as ``resource``.

    Raises:
        DiscoveryError: ``url`` is not an absolute URI, or has a fragment or userinfo.
    """
    try:
        return shared_canonical_resource(url)
    except InvalidTargetError as exc:
        raise DiscoveryError(f"{url[:200]!r} is not a resource URI: {exc.description}") from None


def is_secure_url(url: str) -> bool:
    """True for ``https`` URLs and for ``http`` on a loopback host (MCP security BCP, SSRF).

    Loopback is :func:`ostiary.loopback.is_loopback_host`, the rule the server applies to
    redirect URIs and issuers: ``127.0.0.1.nip.io`` or ``foo.localhost`` are not loopback.

    Args:
        url: A URL learned from a server (metadata location, issuer, endpoint).
    """
    parts = split_url(url)
    if parts is None:
        return False  # e.g. a bad port or an IPv4 address in brackets
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def require_secure_urls(urls: list[str | None], what: str) -> None:
    """Refuse plain-http (non-loopback) or non-http URLs a server pointed us to.

    Raises:
        DiscoveryError: Naming the first offending URL.
    """
    for url in urls:
        if url is not None and not is_secure_url(url):
            raise DiscoveryError(
                f"refusing {what} URL {url!r}: https is required (http only on loopback)"
            )


def prm_urls(server_url: str, resource_metadata: str | None) -> list[str]:
    """PRM candidate URLs in the order the MCP spec requires.

    Args:
        server_url: The MCP server URL.
        resource_metadata: The ``resource_metadata`` challenge parameter, if any.

    Returns:
        Candidates, first to try first, without duplicates.
    """
    scheme, netloc, path = _origin(server_url)
    candidates: list[str] = []
    if resource_metadata:
        candidates.append(resource_metadata)
    path = path.rstrip("/")
    if path:
        candidates.append(urlunsplit((scheme, netloc, PRM_WELL_KNOWN + path, "", "")))
    candidates.append(urlunsplit((scheme, netloc, PRM_WELL_KNOWN, "", "")))
    return list(dict.fromkeys(candidates))


def as_metadata_urls(issuer: str) -> list[str]:
    """AS metadata candidate URLs for ``issuer`` in the MCP spec's order.

    Args:
        issuer: An entry of the PRM ``authorization_servers`` list.

    Returns:
        RFC 8414 path-inserted, OIDC path-inserted, OIDC path-appended (or, for an issuer
        without a path, RFC 8414 root then OIDC root).
    """
    scheme, netloc, path = _origin(issuer)
    path = path.rstrip("/")
    if not path:
        return [
            urlunsplit((scheme, netloc, OAUTH_WELL_KNOWN, "", "")),
            urlunsplit((scheme, netloc, OIDC_WELL_KNOWN, "", "")),
        ]
    return [
        urlunsplit((scheme, netloc, OAUTH_WELL_KNOWN + path, "", "")),
        urlunsplit((scheme, netloc, OIDC_WELL_KNOWN + path, "", "")),
        urlunsplit((scheme, netloc, path + OIDC_WELL_KNOWN, "", "")),
    ]


def is_resource_allowed(prm_resource: str, server_url: str) -> bool:
    """True when the PRM ``resource`` identifies the MCP server at ``server_url``.

    RFC 9728 §3.3 requires the metadata's ``resource`` to match the resource the client
    asked about. A server at ``https://h/mcp`` may publish its metadata for
    ``https://h/mcp`` or for a parent such as ``https://h`` (the root PRM case), never for
    another origin or a sibling path. Scheme and host compare case-insensitively.

    Args:
        prm_resource: The ``resource`` member of the fetched PRM.
        server_url: The MCP server URL.
    """
    want = urlsplit(canonical_resource(server_url))
    have = urlsplit(canonical_resource(prm_resource))
    if (want.scheme, want.netloc) != (have.scheme, have.netloc):
        return False
    have_path = have.path.rstrip("/")
    want_path = want.path.rstrip("/")
    return want_path == have_path or want_path.startswith(have_path + "/")


def _json_object(body: Any, what: str, url: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DiscoveryError(f"{what} at {url} is not a JSON object")
    return body


def parse_prm(body: Any, url: str, server_url: str) -> ProtectedResourceMetadata:
    """Validate a fetched PRM document.

    Args:
        body: The decoded JSON body.
        url: Where it was fetched (for messages).
        server_url: The MCP server URL the metadata must describe.

    Raises:
        DiscoveryError: The document is malformed.
        ResourceMismatchError: It describes another resource.
    """
    try:
        prm = ProtectedResourceMetadata.model_validate(
            _json_object(body, "protected resource metadata", url)
        )
    except ValidationError as exc:
        raise DiscoveryError(
            f"protected resource metadata at {url} is invalid: {_first_error(exc)}"
        ) from None
    if not is_resource_allowed(prm.resource, server_url):
        raise ResourceMismatchError(
            f"protected resource metadata at {url} is for {prm.resource!r}, not for {server_url!r}"
        )
    return prm


def parse_as_metadata(body: Any, url: str, issuer: str) -> AuthorizationServerMetadata:
    """Validate fetched AS metadata against the issuer it was discovered for.

    Args:
        body: The decoded JSON body.
        url: Where it was fetched (for messages).
        issuer: The issuer identifier the well-known URL was built from.

    Raises:
        DiscoveryError: Malformed metadata, an ``issuer`` that is not exactly ``issuer``
            (RFC 8414 §3.3), or no ``S256`` in ``code_challenge_methods_supported``.
    """
    try:
        meta = AuthorizationServerMetadata.model_validate(
            _json_object(body, "authorization server metadata", url)
        )
    except ValidationError as exc:
        raise DiscoveryError(
            f"authorization server metadata at {url} is invalid: {_first_error(exc)}"
        ) from None
    # RFC 8414 §3.3: the issuer MUST be identical to the one the URL was built from.
    if meta.issuer != issuer:
        raise DiscoveryError(
            f"authorization server metadata at {url} names issuer {meta.issuer!r}, "
            f"expected exactly {issuer!r}"
        )
    return meta


def require_pkce_s256(meta: AuthorizationServerMetadata) -> None:
    """Refuse an AS that does not advertise PKCE ``S256`` (MCP security considerations).

    Raises:
        DiscoveryError: ``code_challenge_methods_supported`` is absent or lacks ``S256``.
    """
    if "S256" not in (meta.code_challenge_methods_supported or []):
        raise DiscoveryError(
            f"authorization server {meta.issuer} does not advertise PKCE S256 "
            "(code_challenge_methods_supported); refusing to authorize"
        )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"
