"""Upstream identity providers: log users in with OIDC, GitHub or Google (the AS as their client).

Configured by ``settings.federation``. The login page offers each provider; consent for the
MCP client comes before any redirect upstream (confused-deputy protection); upstream tokens
may be kept, encrypted, under the grant so tool code can call the provider's API with
:func:`upstream_access_token`.
"""

from __future__ import annotations

from ostiary.federation.cipher import TokenCipher
from ostiary.federation.http import UpstreamError
from ostiary.federation.providers import (
    PROVIDER_KINDS,
    GitHubProvider,
    GoogleProvider,
    OAuthProvider,
    OidcProvider,
    Provider,
    UpstreamIdentity,
    UpstreamTokens,
)
from ostiary.federation.service import Federation, callback_url, federation_of
from ostiary.federation.tokens import UpstreamTokenError, upstream_access_token

__all__ = [
    "PROVIDER_KINDS",
    "Federation",
    "GitHubProvider",
    "GoogleProvider",
    "OAuthProvider",
    "OidcProvider",
    "Provider",
    "TokenCipher",
    "UpstreamError",
    "UpstreamIdentity",
    "UpstreamTokenError",
    "UpstreamTokens",
    "callback_url",
    "federation_of",
    "upstream_access_token",
]
