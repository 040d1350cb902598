"""ID-JAG token exchange (RFC 8693) for enterprise-managed authorization."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from ostiary.client._http import HttpResponse
from ostiary.client.discovery import AuthorizationServerMetadata, ProtectedResourceMetadata
from ostiary.client.enterprise import (
    ID_JAG_TOKEN_TYPE,
    IdJagAssertionProvider,
    parse_id_jag_response,
)
from ostiary.client.flow import ServerContext
from ostiary.errors import AuthorizationFlowError

CONTEXT = ServerContext(
    server_url="https://mcp.example/mcp",
    resource="https://mcp.example/mcp",
    prm=ProtectedResourceMetadata(
        resource="https://mcp.example/mcp", authorization_servers=["https://as.example"]
    ),
    metadata=AuthorizationServerMetadata(
        issuer="https://as.example", token_endpoint="https://as.example/token"
    ),
)


async def test_provider_exchanges_the_id_token_for_an_id_jag() -> None:
    seen: list[dict[str, list[str]]] = []

    def idp(request: httpx.Request) -> httpx.Response:
        seen.append(parse_qs(request.content.decode()))
        return httpx.Response(
            200,
            json={
                "access_token": "jag",
                "issued_token_type": ID_JAG_TOKEN_TYPE,
                "token_type": "N_A",
            },
        )

    provider = IdJagAssertionProvider(
        token_endpoint="https://idp.example/token",
        client_id="idp-client",
        id_token="idt",
        transport=httpx.MockTransport(idp),
    )

    assert await provider(CONTEXT) == "jag"
    assert seen == [
        {
            "grant_type": ["urn:ietf:params:oauth:grant-type:token-exchange"],
            "requested_token_type": [ID_JAG_TOKEN_TYPE],
            "subject_token": ["idt"],
            "subject_token_type": ["urn:ietf:params:oauth:token-type:id_token"],
            "audience": ["https://as.example"],
            "resource": ["https://mcp.example/mcp"],
            "client_id": ["idp-client"],
        }
    ]


def test_an_idp_error_is_surfaced() -> None:
    with pytest.raises(AuthorizationFlowError) as caught:
        parse_id_jag_response(HttpResponse(400, {}, b'{"error": "invalid_grant"}'))
    assert (str(caught.value), caught.value.error) == (
        "identity provider token exchange failed (invalid_grant)",
        "invalid_grant",
    )


def test_a_token_that_is_not_an_id_jag_is_refused() -> None:
    with pytest.raises(AuthorizationFlowError):
        parse_id_jag_response(
            HttpResponse(200, {}, b'{"access_token": "x", "issued_token_type": "other"}')
        )
