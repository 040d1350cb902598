"""Revoking stored tokens at logout (RFC 7009 §2).

``ostiary logout`` forgets tokens locally; this module also asks the authorization server
to revoke them, so a copied refresh token stops working too. The AS metadata is fetched
again (RFC 8414 order) because only the issuer is stored. Revocation is best effort: an
AS without a ``revocation_endpoint``, or one that cannot be reached, is reported, and the
local tokens are forgotten either way.
"""

from __future__ import annotations

import httpx

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.discovery import (
    AuthorizationServerMetadata,
    as_metadata_urls,
    parse_as_metadata,
)
from ostiary.client.token_store import StoredGrant
from ostiary.client.tokens import revocation_request
from ostiary.errors import DiscoveryError

__all__ = ["revoke_grant"]


async def _send(http: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
    answer = await http.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpResponse(answer.status_code, headers, answer.content)


async def _metadata(http: httpx.AsyncClient, issuer: str) -> AuthorizationServerMetadata:
    for url in as_metadata_urls(issuer):
        response = await _send(http, HttpRequest.get_json(url))
        body = response.json() if response.status_code == 200 else None
        if body is not None:
            return parse_as_metadata(body, url, issuer)
    raise DiscoveryError(f"no authorization server metadata for {issuer}")


async def revoke_grant(grant: StoredGrant, http: httpx.AsyncClient) -> str:
    """Revoke the refresh token (else the access token) of a stored grant.

    Args:
        grant: The stored entry.
        http: The HTTP client to use.

    Returns:
        ``revoked``, ``nothing to revoke`` or ``no revocation endpoint``.

    Raises:
        DiscoveryError: The AS metadata could not be read.
        httpx.HTTPError: The AS could not be reached.
    """
    tokens, registration = grant.tokens, grant.registration
    if tokens is None or registration is None:
        return "nothing to revoke"
    metadata = await _metadata(http, grant.issuer)
    token, hint = (
        (tokens.refresh_token, "refresh_token")
        if tokens.refresh_token
        else (tokens.access_token, "access_token")
    )
    request = revocation_request(
        token=token, token_type_hint=hint, registration=registration, metadata=metadata
    )
    if request is None:
        return "no revocation endpoint"
    response = await _send(http, request)
    # RFC 7009 §2.2: 200 whether or not the token was valid.
    return (
        "revoked" if response.status_code == 200 else f"revocation failed ({response.status_code})"
    )
