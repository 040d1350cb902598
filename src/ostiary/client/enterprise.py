"""Enterprise-managed authorization: ID token to ID-JAG by token exchange (RFC 8693 §2; SEP-990).

Leg one of the ``io.modelcontextprotocol/enterprise-managed-authorization`` extension: the
client trades the user's ID token from the enterprise identity provider for an Identity
Assertion JWT Authorization Grant (ID-JAG) addressed to the MCP server's authorization
server. Leg two is the RFC 7523 ``jwt_bearer`` grant that
:class:`~ostiary.client.flow.OAuthFlow` already makes; :class:`IdJagAssertionProvider` is
the ``assertion_provider`` that connects them.
"""

from __future__ import annotations

import httpx

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.flow import ServerContext
from ostiary.errors import AuthorizationFlowError

__all__ = ["IdJagAssertionProvider", "id_jag_exchange_request", "parse_id_jag_response"]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


def id_jag_exchange_request(
    *, token_endpoint: str, client_id: str, id_token: str, audience: str, resource: str
) -> HttpRequest:
    """The RFC 8693 §2.1 request for an ID-JAG naming ``audience`` (the MCP AS issuer)."""
    return HttpRequest.post_form(
        token_endpoint,
        {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "requested_token_type": ID_JAG_TOKEN_TYPE,
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "audience": audience,
            "resource": resource,
            "client_id": client_id,
        },
    )


def parse_id_jag_response(response: HttpResponse) -> str:
    """The ID-JAG from an RFC 8693 §2.2 response.

    Raises:
        AuthorizationFlowError: An error answer or a token of another type.
    """
    body = response.json()
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise AuthorizationFlowError(
            f"identity provider token exchange failed ({error or f'HTTP {response.status_code}'})",
            error=error if isinstance(error, str) else None,
        )
    token = body.get("access_token")
    if body.get("issued_token_type") != ID_JAG_TOKEN_TYPE or not isinstance(token, str):
        raise AuthorizationFlowError("identity provider did not issue an ID-JAG")
    return token


class IdJagAssertionProvider:
    """An ``assertion_provider`` that exchanges an enterprise ID token for an ID-JAG.

    Args:
        token_endpoint: The identity provider's token endpoint.
        client_id: This client's id at the identity provider.
        id_token: The user's ID token from the identity provider.
        transport: An httpx transport (tests); the default network otherwise.
    """

    def __init__(
        self,
        *,
        token_endpoint: str,
        client_id: str,
        id_token: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.token_endpoint = token_endpoint
        self.client_id = client_id
        self.id_token = id_token
        self.transport = transport

    async def __call__(self, context: ServerContext) -> str:
        """Run the exchange for the authorization server ``context`` names."""
        request = id_jag_exchange_request(
            token_endpoint=self.token_endpoint,
            client_id=self.client_id,
            id_token=self.id_token,
            audience=context.issuer,
            resource=context.resource,
        )
        async with httpx.AsyncClient(transport=self.transport, timeout=30) as http:
            answer = await http.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        headers = {name.lower(): value for name, value in answer.headers.items()}
        return parse_id_jag_response(HttpResponse(answer.status_code, headers, answer.content))
