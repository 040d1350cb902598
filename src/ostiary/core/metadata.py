"""Authorization server metadata (RFC 8414 §2-§3; OpenID Connect Discovery 1.0 §3-§4).

The MCP spec has clients probe, for an issuer with a path, the path-inserted RFC 8414 URL,
then the path-inserted and path-appended OpenID URLs; the same document answers at each, and
its ``issuer`` is exactly the configured issuer.
"""

from __future__ import annotations

from typing import Any

from ostiary.core.dpop import DPOP_ALGORITHMS
from ostiary.core.prompt import SUPPORTED as PROMPT_VALUES
from ostiary.settings import Settings

JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
ASSERTION_ALGS = ("ES256", "ES384", "RS256", "PS256", "Ed25519", "EdDSA")


def endpoint(settings: Settings, path: str) -> str:
    return f"{settings.issuer}{path}"


def build_metadata(settings: Settings) -> dict[str, Any]:
    """The RFC 8414 document, exact and complete for what this server does."""
    grant_types = ["authorization_code", "refresh_token"]
    if settings.features.client_credentials:
        grant_types.append("client_credentials")
    if settings.enterprise.trusted_issuers:
        grant_types.append(JWT_BEARER_GRANT_TYPE)
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": endpoint(settings, "/authorize"),
        "token_endpoint": endpoint(settings, "/token"),
        "jwks_uri": endpoint(settings, "/jwks"),
        "revocation_endpoint": endpoint(settings, "/revoke"),
        "introspection_endpoint": endpoint(settings, "/introspect"),
        "scopes_supported": list(settings.scopes.supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS[1:]),
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": list(PROMPT_VALUES),
        "client_id_metadata_document_supported": settings.features.client_id_metadata_documents,
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
    if settings.enterprise.trusted_issuers:
        # draft-ietf-oauth-identity-assertion-authz-grant: ID-JAGs are accepted here.
        doc["authorization_grant_profiles_supported"] = [ID_JAG_PROFILE]
    if settings.features.dynamic_registration:
        doc["registration_endpoint"] = endpoint(settings, "/register")
    return doc


def well_known_paths(settings: Settings, suffix: str) -> list[str]:
    """Where a metadata document with ``suffix`` is served (RFC 8414 §3.1 path insertion)."""
    path = settings.issuer_path
    paths = [f"/.well-known/{suffix}{path}"]
    if path and suffix == "openid-configuration":
        paths.append(f"{path}/.well-known/{suffix}")
    return paths
