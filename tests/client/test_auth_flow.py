"""OAuthClientAuth against a real (in-process) authorization server and MCP server."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest

from ostiary.client.auth import OAuthClientAuth
from ostiary.client.discovery import ResourceMismatchError
from ostiary.client.dpop import access_token_hash
from ostiary.client.flow import ServerContext
from ostiary.client.registration import ClientConfig
from ostiary.client.token_store import FileTokenStore, MemoryTokenStore
from ostiary.client.tokens import JWT_BEARER_GRANT_TYPE
from ostiary.errors import AuthorizationFlowError, DiscoveryError, RegistrationError

from ._world import MCP_URL, ORIGIN, Browser, World, build_app

REDIRECT = "http://127.0.0.1:9/callback"
CONFIG = ClientConfig(client_name="test-client", redirect_uris=(REDIRECT,))


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def browser(world: World) -> Browser:
    return Browser(build_app(world))


def make_auth(browser: Browser, **kwargs: object) -> OAuthClientAuth:
    kwargs.setdefault("store", MemoryTokenStore())
    config = kwargs.pop("config", CONFIG)
    return OAuthClientAuth(config, callback=browser, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def http(browser: Browser) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=browser.app)) as client:
        yield client


async def test_first_request_discovers_registers_authorizes_and_retries(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    auth = make_auth(browser)
    response = await http.post(MCP_URL, json={"x": 1}, auth=auth)

    assert response.status_code == 200
    assert world.registrations == [
        {
            "client_name": "test-client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }
    ]
    (query,) = world.authorize_requests
    assert set(query) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
    }
    assert query["client_id"] == "as1-client-1"
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == MCP_URL
    (form,) = world.token_requests
    assert set(form) == {
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "resource",
        "client_id",
    }
    assert form["resource"] == MCP_URL
    assert world.mcp_auth_headers[0] is None
    assert world.mcp_auth_headers[1] == f"Bearer {auth.flow.tokens.access_token}"  # type: ignore[union-attr]


async def test_second_request_reuses_token_without_discovery(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    await http.post(MCP_URL, json={}, auth=auth)

    assert len(world.authorize_requests) == 1
    assert len(world.mcp_auth_headers) == 3
    assert world.mcp_auth_headers[2] == world.mcp_auth_headers[1]


async def test_scope_comes_from_challenge_first(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.challenge_scope = "mcp:basic"
    world.prm_scopes = ["mcp:profile"]
    await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert world.authorize_requests[0]["scope"] == "mcp:basic"


async def test_scope_falls_back_to_prm_scopes_supported(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.prm_scopes = ["mcp:basic", "mcp:read"]
    await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert world.authorize_requests[0]["scope"] == "mcp:basic mcp:read"


async def test_offline_access_requested_only_when_the_as_offers_it(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.challenge_scope = "mcp:basic"
    world.as_scopes = ["mcp:basic", "offline_access"]
    await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert world.authorize_requests[0]["scope"] == "mcp:basic offline_access"


async def test_step_up_succeeds_with_union(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.challenge_scope = "mcp:basic"
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    world.required_scopes = ("mcp:basic", "mcp:write")

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert [q.get("scope") for q in world.authorize_requests] == [
        "mcp:basic",
        "mcp:basic mcp:write",
    ]


async def test_step_up_stops_after_three_authorizations(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    """MCP step-up: retry no more than a few times (first authorization included)."""
    world.required_scopes = ("admin",)
    world.ungrantable = {"admin"}

    response = await http.post(MCP_URL, json={}, auth=make_auth(browser))

    assert response.status_code == 403
    assert [q.get("scope") for q in world.authorize_requests] == [None, "admin", "admin"]


async def test_wrong_iss_is_rejected_before_the_token_request(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.iss_mode = "wrong"
    with pytest.raises(AuthorizationFlowError) as caught:
        await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert str(caught.value) == (
        "authorization response came from issuer 'https://evil.example.com', "
        f"expected '{ORIGIN}/as1'; discarding it"
    )
    assert world.token_requests == []


async def test_missing_iss_is_rejected_when_advertised(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.iss_mode = "omit"
    with pytest.raises(AuthorizationFlowError):
        await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert world.token_requests == []


async def test_missing_iss_is_accepted_when_not_advertised(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.iss_mode = "omit"
    world.iss_supported = False
    response = await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert response.status_code == 200


async def test_as_without_s256_is_refused(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.pkce_methods = None
    with pytest.raises(DiscoveryError) as caught:
        await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert str(caught.value) == (
        f"authorization server {ORIGIN}/as1 does not advertise PKCE S256 "
        "(code_challenge_methods_supported); refusing to authorize"
    )
    assert world.registrations == []


async def test_metadata_issuer_mismatch_is_refused(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.metadata_issuer = "https://evil.example.com"
    with pytest.raises(DiscoveryError):
        await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert world.authorize_requests == []


async def test_resource_mismatch_is_refused_before_authorizing(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.prm_resource = "https://evil.example.com/mcp"
    with pytest.raises(ResourceMismatchError) as caught:
        await http.post(MCP_URL, json={}, auth=make_auth(browser))
    assert str(caught.value) == (
        f"protected resource metadata at {ORIGIN}/.well-known/oauth-protected-resource/mcp "
        f"is for 'https://evil.example.com/mcp', not for '{MCP_URL}'"
    )
    assert world.authorize_requests == []


async def test_refresh_before_expiry(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.access_ttl = 10  # inside the 30 s refresh margin: refreshed before the next use
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    await http.post(MCP_URL, json={}, auth=auth)

    assert [f["grant_type"] for f in world.token_requests] == [
        "authorization_code",
        "refresh_token",
    ]
    assert world.token_requests[1]["resource"] == MCP_URL
    assert len(world.authorize_requests) == 1
    assert len(world.mcp_auth_headers) == 3  # no 401 on the second request


async def test_refresh_on_401(world: World, browser: Browser, http: httpx.AsyncClient) -> None:
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    world.access.clear()

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert [f["grant_type"] for f in world.token_requests] == [
        "authorization_code",
        "refresh_token",
    ]


async def test_revoked_refresh_token_leads_to_new_authorization(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    world.revoke_all()

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert [f["grant_type"] for f in world.token_requests] == [
        "authorization_code",
        "refresh_token",
        "authorization_code",
    ]
    assert len(browser.visited) == 2


async def test_tokens_survive_a_restart_with_the_file_store(
    world: World, browser: Browser, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await http.post(MCP_URL, json={}, auth=make_auth(browser, store=FileTokenStore(tmp_path)))

    again = make_auth(browser, store=FileTokenStore(tmp_path))
    response = await http.post(MCP_URL, json={}, auth=again)

    assert response.status_code == 200
    assert len(world.authorize_requests) == 1
    assert len(world.registrations) == 1
    (path,) = tmp_path.glob("*.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_server_migration_reregisters_at_the_new_issuer(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    auth = make_auth(browser)
    await http.post(MCP_URL, json={}, auth=auth)
    world.active_issuer = f"{ORIGIN}/as2"

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert [q["client_id"] for q in world.authorize_requests] == ["as1-client-1", "as2-client-2"]
    assert world.token_requests[-1]["client_id"] == "as2-client-2"
    assert all(f["grant_type"] != "refresh_token" for f in world.token_requests)


async def test_client_credentials_grant_with_client_secret_basic(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.auth_methods = ["client_secret_basic"]
    config = ClientConfig(
        client_id="svc", client_secret="s3cr:t", grant_types=("client_credentials",)
    )
    auth = OAuthClientAuth(config, grant="client_credentials")

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert world.token_requests == [{"grant_type": "client_credentials", "resource": MCP_URL}]
    # RFC 6749 §2.3.1: id and secret are form-encoded before base64 (':' → %3A).
    assert world.token_auth_headers == ["Basic c3ZjOnMzY3IlM0F0"]
    assert world.authorize_requests == []


async def test_pre_registered_client_secret_post(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.auth_methods = ["client_secret_post"]
    config = ClientConfig(client_id="app", client_secret="pw", redirect_uris=(REDIRECT,))
    await http.post(MCP_URL, json={}, auth=make_auth(browser, config=config))

    assert world.registrations == []
    assert world.token_requests[0]["client_id"] == "app"
    assert world.token_requests[0]["client_secret"] == "pw"
    assert world.token_auth_headers == [None]


async def test_pre_registered_client_bound_to_another_issuer_is_refused(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    config = ClientConfig(client_id="app", pre_registered_issuer="https://other.example")
    with pytest.raises(RegistrationError):
        await http.post(MCP_URL, json={}, auth=make_auth(browser, config=config))


async def test_httpx2_adapter_shares_the_flow(world: World, browser: Browser) -> None:
    auth = make_auth(browser)
    transport = httpx2.ASGITransport(app=browser.app)
    async with httpx2.AsyncClient(transport=transport, auth=auth.for_httpx2()) as client:
        response = await client.post(MCP_URL, json={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=browser.app)) as plain:
        again = await plain.post(MCP_URL, json={}, auth=auth)

    assert (response.status_code, again.status_code) == (200, 200)
    assert len(world.authorize_requests) == 1


async def test_no_callback_means_a_clear_error(world: World, http: httpx.AsyncClient) -> None:
    with pytest.raises(AuthorizationFlowError) as caught:
        await http.post(MCP_URL, json={}, auth=OAuthClientAuth(CONFIG))
    assert str(caught.value) == (
        "authorization is required but no interactive callback is configured"
    )


def test_authorization_url_carries_pkce_state_and_resource(world: World) -> None:
    from ostiary.client.authorization import start_authorization
    from ostiary.client.discovery import AuthorizationServerMetadata

    meta = AuthorizationServerMetadata(
        issuer="https://as",
        authorization_endpoint="https://as/authorize",
        token_endpoint="https://as/t",
    )
    pending = start_authorization(
        metadata=meta, client_id="c", redirect_uri=REDIRECT, resource=MCP_URL, scope=None
    )
    query = parse_qs(urlsplit(pending.authorization_url).query)
    assert query["state"] == [pending.state]
    assert len(pending.code_verifier) == 43
    assert "scope" not in query


async def test_jwt_bearer_grant_uses_the_assertion_once(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    calls: list[str] = []

    async def assertion(context: ServerContext) -> str:
        calls.append(context.issuer)
        return "good-assertion"

    config = ClientConfig(client_id="workload", grant_types=(JWT_BEARER_GRANT_TYPE,))
    auth = OAuthClientAuth(config, grant="jwt_bearer", assertion_provider=assertion)

    response = await http.post(MCP_URL, json={}, auth=auth)

    assert response.status_code == 200
    assert calls == [f"{ORIGIN}/as1"]
    assert world.token_requests == [
        {
            "grant_type": JWT_BEARER_GRANT_TYPE,
            "assertion": "good-assertion",
            "resource": MCP_URL,
            "client_id": "workload",
        }
    ]


async def test_jwt_bearer_error_is_surfaced_without_retry(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    async def assertion(context: ServerContext) -> str:
        return "expired"

    config = ClientConfig(client_id="workload", grant_types=(JWT_BEARER_GRANT_TYPE,))
    auth = OAuthClientAuth(config, grant="jwt_bearer", assertion_provider=assertion)

    with pytest.raises(AuthorizationFlowError) as caught:
        await http.post(MCP_URL, json={}, auth=auth)

    assert caught.value.error == "invalid_grant"
    assert len(world.token_requests) == 1


async def test_dpop_bound_tokens_with_as_and_rs_nonces(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    """RFC 9449 §5, §7.1, §8, §9: proof at the token endpoint, DPoP scheme, nonce retries."""
    world.dpop = True
    auth = make_auth(browser)

    response = await http.post(f"{MCP_URL}?x=1", json={}, auth=auth)

    assert response.status_code == 200
    token = auth.flow.tokens
    assert token is not None
    assert token.token_type == "DPoP"
    assert world.mcp_auth_headers[-1] == f"DPoP {token.access_token}"
    token_proofs = [p for p in world.dpop_proofs if "ath" not in p]
    resource_proofs = [p for p in world.dpop_proofs if "ath" in p]
    assert [(p["htm"], p["htu"], p.get("nonce")) for p in token_proofs] == [
        ("POST", f"{ORIGIN}/as1/token", None),
        ("POST", f"{ORIGIN}/as1/token", "as-nonce-1"),
    ]
    assert [(p["htu"], p.get("nonce")) for p in resource_proofs] == [
        (MCP_URL, None),
        (MCP_URL, "rs-nonce-1"),
    ]
    assert resource_proofs[1]["ath"] == access_token_hash(token.access_token)
    assert len({p["jti"] for p in world.dpop_proofs}) == 4


async def test_missing_prm_is_an_error_without_legacy_discovery(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    world.prm_missing = True
    config = ClientConfig(redirect_uris=(REDIRECT,), legacy_discovery=False)
    with pytest.raises(DiscoveryError) as caught:
        await http.post(MCP_URL, json={}, auth=make_auth(browser, config=config))
    assert str(caught.value) == (
        f"no protected resource metadata found for {MCP_URL} "
        f"({ORIGIN}/.well-known/oauth-protected-resource/mcp: HTTP 404; "
        f"{ORIGIN}/.well-known/oauth-protected-resource: HTTP 404)"
    )


async def test_concurrent_requests_share_one_authorization(
    world: World, browser: Browser, http: httpx.AsyncClient
) -> None:
    auth = make_auth(browser)

    responses = await asyncio.gather(*(http.post(MCP_URL, json={}, auth=auth) for _ in range(3)))

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len(world.authorize_requests) == 1
    assert len(world.registrations) == 1


def test_sync_clients_are_refused(browser: Browser) -> None:
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client,
        pytest.raises(RuntimeError) as caught,
    ):
        client.get(MCP_URL, auth=make_auth(browser))
    assert str(caught.value) == "OAuthClientAuth needs httpx.AsyncClient"


async def test_dpop_tokens_survive_a_restart_with_their_key(
    world: World, browser: Browser, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    world.dpop = True
    await http.post(MCP_URL, json={}, auth=make_auth(browser, store=FileTokenStore(tmp_path)))

    again = make_auth(browser, store=FileTokenStore(tmp_path))
    response = await http.post(MCP_URL, json={}, auth=again)

    assert response.status_code == 200
    assert len(world.authorize_requests) == 1
