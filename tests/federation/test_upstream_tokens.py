"""Kept upstream tokens: encrypted at rest, used by a tool, refreshed, deleted with the grant.

MCP security best practices (token passthrough): the tool never forwards the MCP client's
token; it asks ostiary for the upstream provider's own token kept under the grant.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

from ostiary.assembly.in_process import local_jwt_verifier
from ostiary.core.models import UpstreamToken
from ostiary.federation import UpstreamTokenError, federation_of, upstream_access_token
from ostiary.federation.cipher import TokenDecryptionError, token_context
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.middleware import require_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.principal import Principal
from ostiary.settings import Settings
from tests.federation._flow import federated_login
from tests.federation._idp import ISSUER, RunningIdp
from tests.federation.conftest import RESOURCE, Fed, _fed, jwt_claims, pkce_pair


async def userinfo(fed: Fed, access_token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"{fed.idp.issuer}/me", headers={"Authorization": f"Bearer {access_token}"}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(fed: Fed, resource: str = RESOURCE) -> tuple[dict[str, Any], Principal]:
    """A federated login; returns ostiary's token response and the principal it stands for."""
    verifier, challenge = pkce_pair()
    location, _shown = await federated_login(fed, fed.browser(), challenge, resource=resource)
    tokens = await fed.redeem(location, verifier, resource)
    claims = jwt_claims(tokens["access_token"])
    principal = Principal(
        subject=claims["sub"],
        client_id=claims["client_id"],
        scopes=tuple(claims["scope"].split()),
        audience=(resource,),
        issuer=claims["iss"],
        token_id=claims["jti"],
        claims=claims,
    )
    return tokens, principal


async def kept(fed: Fed, principal: Principal) -> UpstreamToken | None:
    assert principal.token_id is not None
    record = await fed.ctx.storage.get_access_token(fed.ctx.tenant, principal.token_id)
    assert record is not None
    return await fed.ctx.storage.get_upstream_token(fed.ctx.tenant, record.grant_id, "idp")


async def test_a_tool_calls_the_provider_with_the_kept_upstream_token(fed: Fed) -> None:
    mcp = MCPServer("federated-tools")

    @mcp.tool()
    async def upstream_profile() -> str:
        """Who the user is at the upstream provider, asked with the upstream token."""
        token = await upstream_access_token(fed.ctx, require_principal(), "idp")
        info = await userinfo(fed, token)
        return f"{info['sub']} {info['email']}"

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    app = protect_mcp_app(
        mcp,
        resource=resource,
        issuer=ISSUER,
        verifier=local_jwt_verifier(fed.ctx, resource),
        policy=ProtectionPolicy(
            required_scopes=["mcp:read"],
        ),
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        tokens, _principal = await login(fed, resource)
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30
            ) as http,
            streamable_http_client(resource, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("upstream_profile", {})
        assert result.is_error is False
        assert result.content[0].text == "alice alice@idp.example"  # type: ignore[union-attr]
    finally:
        server.should_exit = True
        await task


async def test_upstream_tokens_are_encrypted_at_rest_and_bound_to_their_grant(fed: Fed) -> None:
    _tokens, principal = await login(fed)
    stored = await kept(fed, principal)
    assert stored is not None
    assert stored.subject == principal.subject
    assert stored.access_token_enc.startswith("v1.")
    assert stored.refresh_token_enc is not None
    assert stored.refresh_token_enc.startswith("v1.")
    plain = await upstream_access_token(fed.ctx, principal, "idp")
    assert plain not in stored.access_token_enc
    assert (await userinfo(fed, plain))["sub"] == "alice"
    cipher = federation_of(fed.ctx).cipher
    assert cipher is not None
    with pytest.raises(TokenDecryptionError):
        # Copied under another grant, the ciphertext does not open.
        cipher.decrypt(
            stored.access_token_enc,
            token_context(fed.ctx.tenant, "another-grant", "idp", "access_token"),
        )
    with pytest.raises(TokenDecryptionError):
        # Nor does the access token open as a refresh token.
        cipher.decrypt(
            stored.access_token_enc,
            token_context(fed.ctx.tenant, stored.grant_id, "idp", "refresh_token"),
        )


async def test_an_expired_upstream_token_is_refreshed_upstream(fed: Fed) -> None:
    _tokens, principal = await login(fed)
    before = await kept(fed, principal)
    assert before is not None
    assert before.expires_at is not None
    old = await upstream_access_token(fed.ctx, principal, "idp")
    fed.clock.offset += before.expires_at - fed.clock() + 1  # the upstream token expired
    new = await upstream_access_token(fed.ctx, principal, "idp")
    assert new != old
    assert (await userinfo(fed, new))["email"] == "alice@idp.example"
    after = await kept(fed, principal)
    assert after is not None
    assert after.updated_at == fed.clock()
    assert after.expires_at == fed.clock() + 3600
    # Fresh now: asking again does not refresh again.
    assert await upstream_access_token(fed.ctx, principal, "idp") == new


async def test_revoking_the_grant_deletes_the_upstream_token(fed: Fed) -> None:
    tokens, principal = await login(fed)
    assert await kept(fed, principal) is not None
    revoked = await fed.http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": fed.client_id}
    )
    assert revoked.status_code == 200
    assert await kept(fed, principal) is None
    with pytest.raises(UpstreamTokenError) as info:
        await upstream_access_token(fed.ctx, principal, "idp")
    assert info.value.reason == "the access token is unknown or revoked"


async def test_a_token_of_another_issuer_gets_no_upstream_token(fed: Fed) -> None:
    _tokens, principal = await login(fed)
    foreign = Principal(
        subject=principal.subject,
        client_id=principal.client_id,
        scopes=principal.scopes,
        audience=principal.audience,
        issuer="https://other-as.example",
        token_id=principal.token_id,
    )
    with pytest.raises(UpstreamTokenError) as info:
        await upstream_access_token(fed.ctx, foreign, "idp")
    assert info.value.reason == "the access token is not one this server issued"


@pytest.fixture
async def fed_without_keeping(
    idp: RunningIdp, settings_factory: Callable[..., Settings]
) -> AsyncIterator[Fed]:
    def factory(**overrides: Any) -> Settings:
        overrides["federation"]["providers"][0]["keep_tokens"] = False
        return settings_factory(**overrides)

    async for built in _fed(idp, factory, "memory://"):
        yield built


async def test_without_keep_tokens_nothing_is_stored(fed_without_keeping: Fed) -> None:
    fed = fed_without_keeping
    _tokens, principal = await login(fed)
    assert await kept(fed, principal) is None
    with pytest.raises(UpstreamTokenError) as info:
        await upstream_access_token(fed.ctx, principal, "idp")
    assert info.value.reason == "provider 'idp' does not keep upstream tokens"
