"""Access-token verification for resource servers (RFC 9068 §4, RFC 7662, RFC 8707 §2).

Two verifiers implement :class:`TokenVerifier`:

* :class:`JWTVerifier` checks an RFC 9068 JWT locally against the authorization server's
  JWKS: no network call per request. Keys are fetched once, imported once, and refetched on
  an unknown ``kid`` at most every ``min_refetch_interval`` seconds (key rollover without
  letting garbage tokens hammer the AS). Verified tokens are remembered (keyed by a SHA-256
  of the token, never the token itself) so a client repeating its token pays one dictionary
  lookup instead of one signature check.
* :class:`IntrospectionVerifier` asks the AS (RFC 7662) and caches the answer for a bounded
  time that never outlives the token.

Audience binding is not optional in either: MCP forbids token passthrough, so a token whose
``aud`` does not name this resource is ``invalid_token`` (RFC 8707 §2; MCP "Token Handling").
Both raise :class:`~ostiary.errors.InvalidTokenError` for a bad token and
:class:`~ostiary.errors.TemporarilyUnavailableError` when the AS cannot be reached, so a
network blip is a 503 the client retries, not a 401 that sends the user back to log in.

This module is the import point; the code lives in ``principal`` (shared checks),
``jwt_verifier`` and ``introspection``.
"""

from __future__ import annotations

from ostiary.resource.introspection import IntrospectionVerifier
from ostiary.resource.jwt_verifier import DEFAULT_ALGORITHMS, JWTVerifier
from ostiary.resource.principal import (
    Principal,
    TokenVerifier,
    canonical_resource,
    fetch_authorization_server_metadata,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "IntrospectionVerifier",
    "JWTVerifier",
    "Principal",
    "TokenVerifier",
    "canonical_resource",
    "fetch_authorization_server_metadata",
]
