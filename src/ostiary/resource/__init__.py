"""Resource-server toolkit: protect an MCP server with OAuth (MCP authorization; RFC 9728).

Import from here: the verifiers (:class:`JWTVerifier`, :class:`IntrospectionVerifier`), the
pure-ASGI :class:`BearerAuthMiddleware`, challenges, protected resource metadata, scope
policies, and the :class:`ProtectionPolicy` every adapter takes. The official-SDK adapter
lives in ``ostiary.resource.mcp_sdk`` and is not imported here, so protecting a plain ASGI
app does not load the MCP SDK server.
"""

from __future__ import annotations

from ostiary.resource.challenges import (
    BearerChallenge,
    build_bearer_challenge,
    challenge_for_error,
    parse_bearer_challenge,
    parse_www_authenticate,
)
from ostiary.resource.cors import OriginGuardMiddleware, mcp_cors
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.forwarding import IdentityHeaders, IdentityHeadersMiddleware
from ostiary.resource.metadata import (
    build_protected_resource_metadata,
    protected_resource_metadata_routes,
    protected_resource_metadata_url,
)
from ostiary.resource.middleware import BearerAuthMiddleware, current_principal, require_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.scopes import (
    McpPublicAccess,
    McpToolScopeGuard,
    ResourcePolicy,
    ScopePolicy,
    ToolPolicy,
)
from ostiary.resource.verifiers import IntrospectionVerifier, JWTVerifier, Principal, TokenVerifier

__all__ = [
    "BearerAuthMiddleware",
    "BearerChallenge",
    "DPoPOptions",
    "IdentityHeaders",
    "IdentityHeadersMiddleware",
    "IntrospectionVerifier",
    "JWTVerifier",
    "McpPublicAccess",
    "McpToolScopeGuard",
    "OriginGuardMiddleware",
    "Principal",
    "ProtectionPolicy",
    "ResourcePolicy",
    "ScopePolicy",
    "TokenVerifier",
    "ToolPolicy",
    "build_bearer_challenge",
    "build_protected_resource_metadata",
    "challenge_for_error",
    "current_principal",
    "mcp_cors",
    "parse_bearer_challenge",
    "parse_www_authenticate",
    "protected_resource_metadata_routes",
    "protected_resource_metadata_url",
    "require_principal",
]
