"""The ID-JAG grant (SEP-990 leg two; draft-ietf-oauth-identity-assertion-authz-grant) over HTTP.

A test identity provider on a real loopback port serves its JWKS and the RFC 8693 exchange;
the authorization server and the demo MCP server run in process (httpx.ASGITransport).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OctKey

from ostiary.assembly.demo import create_combined_app
from ostiary.assembly.in_process import CombinedApp
from ostiary.client.auth import OAuthClientAuth
from ostiary.client.enterprise import IdJagAssertionProvider
from ostiary.client.registration import ClientConfig
from ostiary.settings import Settings
from tests.demo._support import USERNAME, mcp_headers, rpc
from tests.demo.test_combined_app import start
from tests.integration._enterprise_idp import EnterpriseIdp, running_idp
from tests.integration.dpop_support import jwt_claims

REFETCH_SECONDS = 2
ISSUER = "http://127.0.0.1:8000"
MCP = f"{ISSUER}/mcp"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP_CLIENT = "mcp-client-at-idp"


@pytest.fixture
def idp() -> Iterator[EnterpriseIdp]:
    with running_idp() as running:
        running.id_tokens["alice-id-token"] = USERNAME
        yield running


def enterprise_settings(
    settings_factory: Callable[..., Settings],
    idp: EnterpriseIdp,
    storage: dict[str, str] | None = None,
    **issuer: Any,
) -> Settings:
    trusted = {
        "name": "acme",
        "issuer": idp.issuer,
        "jwks_uri": idp.jwks_uri,
        "match_username": True,
        **issuer,
    }
    return settings_factory(
        issuer=ISSUER,
        security={"allow_private_fetch": True},
        # The server's clock counts whole seconds: with 2, a request less than a second after
        # the fetch is always inside the window, and one 2 s later always outside it.
        enterprise={"trusted_issuers": [trusted], "jwks_refetch_seconds": REFETCH_SECONDS},
        **({"storage": storage} if storage else {}),
    )


@pytest.fixture
def app(settings_factory: Callable[..., Settings], idp: EnterpriseIdp) -> CombinedApp:
    return create_combined_app(enterprise_settings(settings_factory, idp))


@pytest.fixture
async def http(app: CombinedApp) -> AsyncIterator[httpx.AsyncClient]:
    async for client in start(app):
        yield client


async def register(http: httpx.AsyncClient, grant_types: list[str]) -> tuple[str, str]:
    response = await http.post(
        "/register",
        json={
            "client_name": "enterprise agent",
            "grant_types": grant_types,
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["client_id"], body["client_secret"]


async def exchange(
    http: httpx.AsyncClient, client: tuple[str, str], assertion: str | None, **form: str
) -> httpx.Response:
    data = {"grant_type": JWT_BEARER, "resource": MCP, **form}
    if assertion is not None:
        data["assertion"] = assertion
    return await http.post("/token", data=data, auth=client)


def refused(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


def invalid_grant(description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": "invalid_grant", "error_description": description}


async def test_ostiary_client_exchanges_an_id_jag_and_calls_a_tool(
    app: CombinedApp, http: httpx.AsyncClient, idp: EnterpriseIdp
) -> None:
    """The must-show path: IdP exchange (RFC 8693) -> jwt-bearer at ostiary -> tools/call."""
    client_id, secret = await register(http, [JWT_BEARER])
    idp.clients[IDP_CLIENT] = client_id
    provider = IdJagAssertionProvider(
        token_endpoint=idp.token_endpoint, client_id=IDP_CLIENT, id_token="alice-id-token"
    )
    auth = OAuthClientAuth(
        ClientConfig(client_id=client_id, client_secret=secret, grant_types=(JWT_BEARER,)),
        server_url=MCP,
        grant="jwt_bearer",
        assertion_provider=provider,
    )
    token_requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path == "/token":
            token_requests.append(request)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=ISSUER, auth=auth, event_hooks={"request": [record]}
    ) as client:
        called = await client.post(
            "/mcp",
            json=rpc("tools/call", {"name": "echo", "arguments": {"text": "from acme"}}),
            headers=mcp_headers(None),
        )
    assert called.status_code == 200, called.text
    assert called.json()["result"]["structuredContent"] == {"result": "from acme"}
    tokens = auth.flow.tokens
    assert tokens is not None
    assert tokens.refresh_token is None  # the client asks the IdP for a new ID-JAG instead
    ctx = app.state.ctx
    alice = await ctx.storage.get_user_by_username(ctx.tenant, USERNAME)
    assert alice is not None
    claims = jwt_claims(tokens.access_token)
    assert (claims["iss"], claims["aud"], claims["sub"], claims["client_id"]) == (
        ISSUER,
        MCP,
        alice.user_id,
        client_id,
    )
    assert claims["scope"] == "mcp:read"  # what the 401 challenge asked for, within the ID-JAG's
    assert [r.headers["authorization"].split()[0] for r in token_requests] == ["Basic"]
    assert idp.jwks_fetches == 1


async def test_metadata_advertises_the_grant_and_the_id_jag_profile(
    http: httpx.AsyncClient,
) -> None:
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert JWT_BEARER in doc["grant_types_supported"]
    assert doc["authorization_grant_profiles_supported"] == [
        "urn:ietf:params:oauth:grant-profile:id-jag"
    ]


async def test_without_trusted_issuers_the_grant_is_neither_offered_nor_accepted(
    settings_factory: Callable[..., Settings],
) -> None:
    async for http in start(create_combined_app(settings_factory(issuer=ISSUER))):
        doc = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert JWT_BEARER not in doc["grant_types_supported"]
        assert "authorization_grant_profiles_supported" not in doc
        registered = await http.post(
            "/register",
            json={"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "client_secret_basic"},
        )
        assert refused(registered) == (
            400,
            {
                "error": "invalid_client_metadata",
                "error_description": "the jwt-bearer grant is not enabled on this server",
            },
        )
        answer = await http.post("/token", data={"grant_type": JWT_BEARER, "assertion": "x"})
        assert answer.json()["error"] == "unsupported_grant_type"


async def test_a_public_client_cannot_register_for_the_grant(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/register",
        json={"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "none"},
    )
    assert refused(response) == (
        400,
        {
            "error": "invalid_client_metadata",
            "error_description": "the jwt-bearer grant requires a confidential client",
        },
    )


async def test_refusals_carry_the_rfc_error_and_exact_description(
    app: CombinedApp, http: httpx.AsyncClient, idp: EnterpriseIdp
) -> None:
    client = await register(http, [JWT_BEARER])
    client_id = client[0]
    events: list[tuple[str, dict[str, Any]]] = []
    app.state.ctx.audit.subscribe(lambda event, fields: events.append((event, fields)))
    now = int(time.time())
    kid = idp.key.kid
    assert kid is not None

    def jag(**kw: Any) -> str:
        return idp.id_jag(
            **{"sub": USERNAME, "aud": ISSUER, "client_id": client_id, "resource": MCP, **kw}
        )

    cases = {
        "wrong audience": (
            jag(aud="https://other-as.example"),
            "the ID-JAG audience is not this authorization server",
        ),
        "expired": (jag(iat=now - 400, exp=now - 100), "the ID-JAG has expired"),
        "foreign issuer": (
            jag(iss="https://evil.example"),
            "the ID-JAG issuer is not a trusted identity provider",
        ),
        "bad signature": (
            jag(key=ECKey.generate_key("P-256", {"kid": kid})),
            "the ID-JAG signature is invalid",
        ),
        "client_id mismatch": (
            jag(client_id="someone-else"),
            "the ID-JAG was issued to another client",
        ),
        "unknown user": (jag(sub="mallory"), "the ID-JAG subject has no account on this server"),
        "not an ID-JAG": (
            jag(header={"typ": "JWT"}),
            "the assertion is not an ID-JAG (typ must be oauth-id-jag+jwt)",
        ),
        "symmetric alg": (
            jag(header={"alg": "HS256"}, key=OctKey.generate_key(256, {"kid": kid})),
            "the ID-JAG signing algorithm is not accepted",
        ),
        "too long lived": (jag(lifetime=3600), "the ID-JAG lifetime is too long"),
        "malformed": ("not-a-jwt", "the assertion is not a well-formed JWT"),
    }
    for name, (assertion, description) in cases.items():
        response = await exchange(http, client, assertion)
        assert refused(response) == invalid_grant(description), name
        assert response.headers["cache-control"] == "no-store"

    refusals = [fields for event, fields in events if event == "id_jag.refused"]
    assert [f["reason"] for f in refusals] == [d for _, d in cases.values()]


async def test_an_id_jag_is_spent_once(http: httpx.AsyncClient, idp: EnterpriseIdp) -> None:
    client = await register(http, [JWT_BEARER])
    assertion = idp.id_jag(sub=USERNAME, aud=ISSUER, client_id=client[0], resource=MCP)
    first = await exchange(http, client, assertion)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    again = await exchange(http, client, assertion)
    assert refused(again) == invalid_grant("the ID-JAG was already used")


async def test_request_errors(http: httpx.AsyncClient, idp: EnterpriseIdp) -> None:
    client = await register(http, [JWT_BEARER])
    assert refused(await exchange(http, client, None)) == (
        400,
        {"error": "invalid_request", "error_description": "assertion is required"},
    )
    other = await register(http, ["client_credentials"])
    assertion = idp.id_jag(sub=USERNAME, aud=ISSUER, client_id=other[0], resource=MCP)
    assert refused(await exchange(http, other, assertion)) == (
        400,
        {
            "error": "unauthorized_client",
            "error_description": f"client is not registered for grant_type {JWT_BEARER}",
        },
    )
    wide = idp.id_jag(sub=USERNAME, aud=ISSUER, client_id=client[0], scope="mcp:read")
    assert refused(await exchange(http, client, wide, scope="mcp:write")) == (
        400,
        {
            "error": "invalid_scope",
            "error_description": "scope not granted by the ID-JAG: mcp:write",
        },
    )
    elsewhere = idp.id_jag(
        sub=USERNAME, aud=ISSUER, client_id=client[0], resource="https://elsewhere.example/mcp"
    )
    assert refused(await exchange(http, client, elsewhere))[1]["error"] == "invalid_target"


async def test_a_rotated_key_is_fetched_on_its_unknown_kid(
    http: httpx.AsyncClient, idp: EnterpriseIdp
) -> None:
    client = await register(http, [JWT_BEARER])

    def fresh() -> str:
        return idp.id_jag(sub=USERNAME, aud=ISSUER, client_id=client[0], resource=MCP)

    assert (await exchange(http, client, fresh())).status_code == 200
    assert idp.jwks_fetches == 1
    idp.rotate("k2")
    # Within jwks_refetch_seconds of the last fetch, an unknown kid does not refetch.
    assert refused(await exchange(http, client, fresh())) == invalid_grant(
        "no key of the identity provider matches the ID-JAG kid"
    )
    assert idp.jwks_fetches == 1
    time.sleep(REFETCH_SECONDS + 0.1)
    response = await exchange(http, client, fresh())
    assert response.status_code == 200, response.text
    assert idp.jwks_fetches == 2


async def test_create_users_links_a_new_account_once(
    settings_factory: Callable[..., Settings], idp: EnterpriseIdp
) -> None:
    settings = enterprise_settings(
        settings_factory, idp, subject_claim="email", match_username=False, create_users=True
    )
    app = create_combined_app(settings)
    async for http in start(app):
        client = await register(http, [JWT_BEARER])
        subjects = []
        for _ in range(2):
            assertion = idp.id_jag(sub="u-42", aud=ISSUER, client_id=client[0], resource=MCP)
            response = await exchange(http, client, assertion)
            assert response.status_code == 200, response.text
            subjects.append(jwt_claims(response.json()["access_token"])["sub"])
        ctx = app.state.ctx
        user = await ctx.storage.get_user(ctx.tenant, subjects[0])
        assert subjects[0] == subjects[1]
        assert user is not None
        assert user.username == "acme.u-42@acme.example"
