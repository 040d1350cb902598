"""The combined app in-process (httpx ASGITransport): routing, PRM, challenges, key rotation,
custom scope names and usage counting, with real tokens from the real pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ostiary.assembly.demo import create_combined_app
from ostiary.assembly.in_process import CombinedApp, RevocationCheckingVerifier
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.demo.server import DemoScopes
from ostiary.errors import ConfigurationError
from ostiary.resource.policy import validate_verifier
from ostiary.resource.verifiers import JWTVerifier
from ostiary.settings import Settings
from ostiary.storage import MemoryStorage
from tests.demo._support import PASSWORD, USERNAME, mcp_headers, obtain_token, rpc
from tests.helpers.context import build_context

ISSUER = "http://127.0.0.1:8000"
PRM = f"{ISSUER}/.well-known/oauth-protected-resource/mcp"


async def start(app: CombinedApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan in its own task (anyio scopes must exit where they entered)."""
    ready, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            ready.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await ready.wait()
    try:
        ctx = app.state.ctx
        await ctx.storage.save_user(
            await new_user(ctx.tenant, USERNAME, PASSWORD, ctx.clock(), hashing=INSECURE_TEST)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http
    finally:
        stop.set()
        await task


@pytest.fixture
async def app(settings_factory: Callable[..., Settings]) -> CombinedApp:
    return create_combined_app(settings_factory(issuer=ISSUER))


@pytest.fixture
async def http(app: CombinedApp) -> AsyncIterator[httpx.AsyncClient]:
    async for client in start(app):
        yield client


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": tool, "arguments": arguments})


async def test_both_apps_answer_on_one_port(http: httpx.AsyncClient) -> None:
    as_meta = await http.get("/.well-known/oauth-authorization-server")
    prm = await http.get("/.well-known/oauth-protected-resource/mcp")
    root_prm = await http.get("/.well-known/oauth-protected-resource")
    assert as_meta.status_code == 200
    assert as_meta.json()["issuer"] == ISSUER
    expected = {
        "resource": f"{ISSUER}/mcp",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:read", "mcp:write"],
        "resource_name": "ostiary demo MCP server",
    }
    assert prm.json() == expected
    assert root_prm.json() == expected


async def test_a_protected_tool_without_a_token_gets_the_bare_challenge(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/mcp", json=call("get_user_info"), headers=mcp_headers())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{PRM}"'
    )


async def test_a_write_tool_with_a_read_token_gets_a_403_naming_every_scope(
    http: httpx.AsyncClient,
) -> None:
    issued = await obtain_token(ISSUER, f"{ISSUER}/mcp", http=http)
    response = await http.post(
        "/mcp",
        json=call("create_secure_note", content="x"),
        headers=mcp_headers(issued.access_token),
    )
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", '
        'error_description="The access token does not carry the scope this request needs.", '
        'scope="mcp:read mcp:write", '
        f'resource_metadata="{PRM}"'
    )


async def test_tokens_signed_after_a_key_rotation_are_accepted(
    app: CombinedApp, http: httpx.AsyncClient
) -> None:
    before = await obtain_token(ISSUER, f"{ISSUER}/mcp", http=http)
    ctx = app.state.ctx
    await ctx.keys.rotate(ctx.clock())
    after = await obtain_token(ISSUER, f"{ISSUER}/mcp", http=http)
    assert before.access_token.split(".")[0] != after.access_token.split(".")[0]  # new kid
    for token in (before.access_token, after.access_token):
        response = await http.post("/mcp", json=call("get_user_info"), headers=mcp_headers(token))
        assert response.status_code == 200, response.text
        assert response.json()["result"]["structuredContent"]["username"] == USERNAME


async def test_public_calls_are_counted_for_anonymous_in_mixed_auth(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_combined_app(settings_factory(issuer=ISSUER), mixed_auth=True)
    async for http in start(app):
        for text in ("a", "b"):
            response = await http.post("/mcp", json=call("echo", text=text), headers=mcp_headers())
            assert response.json()["result"]["structuredContent"] == {"result": text}
        ctx = app.state.ctx
        assert await ctx.storage.get_usage(ctx.tenant, "anonymous") == {"echo": 2}


@pytest.mark.parametrize(
    "message",
    [
        rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}),
        rpc("tools/list"),
        call("echo", text="a"),
        call("get_user_info"),
    ],
    ids=["initialize", "tools/list", "public tool", "protected tool"],
)
async def test_every_tokenless_request_is_challenged_by_default(
    app: CombinedApp, http: httpx.AsyncClient, message: dict[str, Any]
) -> None:
    response = await http.post("/mcp", json=message, headers=mcp_headers())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{PRM}"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "An access token is required.",
    }
    ctx = app.state.ctx
    assert await ctx.storage.get_usage(ctx.tenant, "anonymous") == {}


@pytest.mark.parametrize("mixed", [False, True], ids=["default", "mixed auth"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_on_the_stateless_endpoint_are_405_with_or_without_a_token(
    settings_factory: Callable[..., Settings], method: str, mixed: bool
) -> None:
    app = create_combined_app(settings_factory(issuer=ISSUER), mixed_auth=mixed)
    async for http in start(app):
        issued = await obtain_token(ISSUER, f"{ISSUER}/mcp", http=http)
        sse = {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        anonymous = await http.request(method, "/mcp", headers=sse)
        with_token = await http.request(
            method, "/mcp", headers={**sse, "Authorization": f"Bearer {issued.access_token}"}
        )
    for response in (anonymous, with_token):
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == -32000
        assert "www-authenticate" not in response.headers


async def test_scope_names_are_configurable(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        issuer=ISSUER,
        scopes={"supported": ["notes:read", "notes:write"], "default": ["notes:read"]},
    )
    app = create_combined_app(settings, scopes=DemoScopes(read="notes:read", write="notes:write"))
    async for http in start(app):
        prm = await http.get("/.well-known/oauth-protected-resource/mcp")
        refused = await http.post("/mcp", json=call("list_secure_notes"), headers=mcp_headers())
        issued = await obtain_token(ISSUER, f"{ISSUER}/mcp", scope="notes:read", http=http)
        listed = await http.post(
            "/mcp", json=call("list_secure_notes"), headers=mcp_headers(issued.access_token)
        )
    assert prm.json()["scopes_supported"] == ["notes:read", "notes:write"]
    assert refused.headers["www-authenticate"] == (
        f'Bearer scope="notes:read", resource_metadata="{PRM}"'
    )
    assert listed.json()["result"]["structuredContent"] == {"count": 0, "notes": []}


async def test_tools_a_token_cannot_call_can_be_hidden(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_combined_app(
        settings_factory(issuer=ISSUER), hide_unauthorized_tools=True, mixed_auth=True
    )
    async for http in start(app):
        anonymous = await http.post("/mcp", json=rpc("tools/list"), headers=mcp_headers())
        issued = await obtain_token(ISSUER, f"{ISSUER}/mcp", http=http)
        reader = await http.post(
            "/mcp", json=rpc("tools/list"), headers=mcp_headers(issued.access_token)
        )
    assert [t["name"] for t in anonymous.json()["result"]["tools"]] == [
        "echo",
        "get_time",
        "public_search",
    ]
    assert [t["name"] for t in reader.json()["result"]["tools"]] == [
        "echo",
        "get_time",
        "public_search",
        "get_user_info",
        "list_secure_notes",
        "get_api_usage",
    ]


async def test_demo_scope_names_come_from_settings(
    settings_factory: Callable[..., Settings],
) -> None:
    """OSTIARY_DEMO__READ_SCOPE / __WRITE_SCOPE / __HIDE_UNAUTHORIZED_TOOLS / __MIXED_AUTH."""
    settings = settings_factory(
        issuer=ISSUER,
        scopes={"supported": ["notes:read", "notes:write"], "default": ["notes:read"]},
        demo={
            "read_scope": "notes:read",
            "write_scope": "notes:write",
            "hide_unauthorized_tools": True,
            "mixed_auth": True,
        },
    )
    async for http in start(create_combined_app(settings)):
        prm = await http.get("/.well-known/oauth-protected-resource/mcp")
        listed = await http.post("/mcp", json=rpc("tools/list"), headers=mcp_headers())
        refused = await http.post("/mcp", json=call("create_secure_note"), headers=mcp_headers())
    assert prm.json()["scopes_supported"] == ["notes:read", "notes:write"]
    assert [t["name"] for t in listed.json()["result"]["tools"]] == [
        "echo",
        "get_time",
        "public_search",
    ]
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        f'Bearer scope="notes:read", resource_metadata="{PRM}"'
    )


def test_a_demo_scope_the_server_does_not_support_is_refused_at_start(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(issuer=ISSUER, demo={"write_scope": "notes:write"})

    with pytest.raises(ConfigurationError) as raised:
        create_combined_app(settings)

    assert str(raised.value) == (
        "demo scope(s) notes:write not in scopes.supported (mcp:read, mcp:write, "
        "offline_access): add them there (OSTIARY_SCOPES__SUPPORTED)"
    )


def test_the_in_process_verifier_states_its_issuer_and_audience_for_the_start_up_check() -> None:
    """The demo's revocation-checking verifier wraps a JWT verifier; protect_mcp_app compares
    what that verifier expects with the metadata it publishes, so a mismatch stops the app."""
    settings = Settings(_env_file=None, issuer="https://as.example", storage={"url": "memory://"})
    ctx = build_context(settings, MemoryStorage())
    inner = JWTVerifier("https://as.example", "https://mcp.example/mcp")
    verifier = RevocationCheckingVerifier(ctx, inner)

    assert (verifier.issuer, verifier.audience) == ("https://as.example", "https://mcp.example/mcp")
    validate_verifier(verifier, "https://mcp.example/mcp", ["https://as.example"])
    with pytest.raises(
        ConfigurationError, match=re.escape("audience 'https://mcp.example/mcp' is not")
    ):
        validate_verifier(verifier, "https://other.example/mcp", ["https://as.example"])
    with pytest.raises(ConfigurationError, match=re.escape("issuer 'https://as.example' is not")):
        validate_verifier(verifier, "https://mcp.example/mcp", ["https://elsewhere.example"])
