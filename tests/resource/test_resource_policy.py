"""One ProtectionPolicy for every protected app; ``resource`` + ``issuer`` are enough (issue 14).

Covers: the default verifier (JWTs of the issuer, JWKS found through its RFC 8414 metadata,
audience the canonical resource); a verifier that disagrees with ``issuer``/``resource``, a
contradictory policy, and a scope map naming a tool, prompt or resource the server lacks are
all start-up errors, for the SDK adapter, the FastMCP adapter and the gateway alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ostiary.errors import ConfigurationError
from ostiary.gateway.app import create_gateway_app
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy, ServerNames, validate_names
from ostiary.resource.verifiers import IntrospectionVerifier, JWTVerifier
from tests.resource._rs_support import ISSUER, JWKS_URI, AuthorizationServerDouble, SigningKey, mint

RESOURCE = "https://mcp.example.com/mcp"
KEY = SigningKey.generate("ES256", kid="policy-1")
JSON_OPTIONS = {"stateless_http": True, "json_response": True}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def notes_server() -> MCPServer:
    mcp = MCPServer("notes")

    @mcp.tool()
    def add_note(text: str) -> str:
        """Saves a note."""
        return "saved"

    @mcp.tool()
    def search(query: str) -> str:
        """Searches."""
        return query

    @mcp.prompt()
    def summary() -> str:
        """Summarises."""
        return "summarise"

    @mcp.resource("user://notes/{note_id}")
    def note(note_id: str) -> str:
        """One note."""
        return note_id

    return mcp


async def start(app: Starlette) -> None:
    """Run the app's start-up (where the names are checked) and its shutdown."""
    async with app.router.lifespan_context(app):
        pass


# --- resource + issuer are enough -----------------------------------------------------------


@pytest.fixture
def discovered_jwks(monkeypatch: pytest.MonkeyPatch) -> AuthorizationServerDouble:
    """The issuer publishes RFC 8414 metadata naming its JWKS; the default verifier's HTTP
    client reaches it in-process."""
    double = AuthorizationServerDouble(keys=[KEY])

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": ISSUER, "jwks_uri": JWKS_URI})

    as_app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            *double.app().routes,
        ]
    )

    def in_process(**kwargs: Any) -> httpx.AsyncClient:
        return _HTTPX_CLIENT(transport=httpx.ASGITransport(app=as_app), base_url=ISSUER)

    monkeypatch.setattr("ostiary.resource.jwt_verifier.httpx.AsyncClient", in_process)
    return double


_HTTPX_CLIENT = httpx.AsyncClient  # before any test patches it


def client(app: Starlette) -> httpx.AsyncClient:
    """A client of the protected app itself (not patched)."""
    transport = httpx.ASGITransport(app=app)
    return _HTTPX_CLIENT(transport=transport, base_url="https://mcp.example.com")


async def test_resource_and_issuer_are_enough(discovered_jwks: AuthorizationServerDouble) -> None:
    app = protect_mcp_app(
        notes_server(),
        resource=RESOURCE,
        issuer=ISSUER,
        policy=ProtectionPolicy(required_scopes=["mcp:read"]),
        streamable_http_options=JSON_OPTIONS,
    )
    good = mint(KEY, aud=RESOURCE, scope="mcp:read")
    elsewhere = mint(KEY, aud="https://other.example.com/mcp", scope="mcp:read")
    async with app.router.lifespan_context(app), client(app) as http:
        accepted = await http.post(
            "/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {good}"}
        )
        refused = await http.post(
            "/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {elsewhere}"}
        )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["result"]["serverInfo"]["name"] == "notes"
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert discovered_jwks.jwks_hits == 1


def test_several_issuers_without_a_verifier_is_a_start_up_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        protect_mcp_app(
            notes_server(), resource=RESOURCE, issuer=[ISSUER, "https://other-as.example"]
        )
    assert str(info.value) == (
        "2 issuers named and no verifier: pass verifier= for the one(s) whose tokens this "
        "resource accepts"
    )


@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        (
            JWTVerifier("https://other-as.example", RESOURCE, JWKS_URI),
            "the verifier's issuer 'https://other-as.example' is not the issuer the metadata "
            "names ('https://auth.example.com'): clients would get tokens it refuses",
        ),
        (
            JWTVerifier(ISSUER, "https://mcp.example.com/other", JWKS_URI),
            "the verifier's audience 'https://mcp.example.com/other' is not the resource "
            "'https://mcp.example.com/mcp': tokens issued for this resource would all be "
            "refused",
        ),
        (
            IntrospectionVerifier(f"{ISSUER}/introspect", "rs", "s", "https://x.example/mcp"),
            "the verifier's audience 'https://x.example/mcp' is not the resource "
            "'https://mcp.example.com/mcp': tokens issued for this resource would all be "
            "refused",
        ),
    ],
    ids=["issuer", "audience", "introspection audience"],
)
def test_a_verifier_that_disagrees_is_a_start_up_error(verifier: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        protect_mcp_app(notes_server(), resource=RESOURCE, issuer=ISSUER, verifier=verifier)
    assert str(info.value) == message


def test_a_verifier_agreeing_in_canonical_form_is_accepted() -> None:
    verifier = JWTVerifier(ISSUER, "HTTPS://MCP.example.com:443/mcp", JWKS_URI)
    app = protect_mcp_app(notes_server(), resource=RESOURCE, issuer=ISSUER, verifier=verifier)
    assert isinstance(app, Starlette)


def test_the_gateway_checks_its_verifier_too() -> None:
    with pytest.raises(ConfigurationError, match="the verifier's audience"):
        create_gateway_app(
            resource="https://gw.example.com/mcp",
            issuer=ISSUER,
            verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI),
            upstream_url="http://127.0.0.1:9/mcp",
        )


# --- the policy itself ----------------------------------------------------------------------


def test_policy_keeps_tuples_and_read_only_maps() -> None:
    policy = ProtectionPolicy(
        required_scopes=["mcp:read"],
        tool_scopes={"add_note": ["mcp:write"]},
        prompt_scopes={"summary": ["mcp:read"]},
    )
    assert policy.required_scopes == ("mcp:read",)
    assert policy.tool_scopes == {"add_note": ("mcp:write",)}
    assert policy.declared_scopes() == ("mcp:read", "mcp:write")
    with pytest.raises(TypeError):
        policy.tool_scopes["search"] = ()  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.mixed_auth = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"public_tools": ["search"]},
            "public_tools are callable without a token only in mixed auth: pass "
            "mixed_auth=True (clients then connect without a token), or drop public_tools",
        ),
        ({"max_streams_per_address": -1}, "max_streams_per_address must be 0 (no bound) or more"),
        (
            {"required_scopes": "mcp:read"},
            "required_scopes must be a list, not the string 'mcp:read'",
        ),
        (
            {"tool_scopes": {"add_note": "mcp:write"}},
            "tool_scopes['add_note'] must be a list of scopes, not a string",
        ),
    ],
    ids=["public without mixed", "negative bound", "string list", "string scopes"],
)
def test_a_contradictory_policy_cannot_be_built(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ProtectionPolicy(**options)
    assert str(info.value) == message


def test_dpop_options_for_another_resource_are_a_start_up_error() -> None:
    policy = ProtectionPolicy(dpop=DPoPOptions("https://other.example.com/mcp"))
    with pytest.raises(ConfigurationError, match=r"dpop is for 'https://other\.example\.com/mcp'"):
        protect_mcp_app(notes_server(), resource=RESOURCE, issuer=ISSUER, policy=policy)


def test_hiding_tools_of_an_http_upstream_is_a_start_up_error() -> None:
    with pytest.raises(ConfigurationError, match="hide_unauthorized_tools needs a stdio"):
        create_gateway_app(
            resource="https://gw.example.com/mcp",
            issuer=ISSUER,
            upstream_url="http://127.0.0.1:9/mcp",
            policy=ProtectionPolicy(hide_unauthorized_tools=True),
        )


# --- scope maps name real things ------------------------------------------------------------

NAMED = [
    (
        {"tool_scopes": {"add_nte": ["mcp:write"]}},
        "tool_scopes names 'add_nte', which the server does not have (its tools: add_note, search)",
    ),
    (
        {"public_tools": ["serch"], "mixed_auth": True},
        "public_tools names 'serch', which the server does not have (its tools: add_note, search)",
    ),
    (
        {"prompt_scopes": {"summry": ["mcp:read"]}},
        "prompt_scopes names 'summry', which the server does not have (its prompts: summary)",
    ),
    (
        {"resource_scopes": {"user://note/{note_id}": ["notes:read"]}},
        "resource_scopes names 'user://note/{note_id}', which the server does not have "
        "(its resources: user://notes/{note_id})",
    ),
]
NAMED_IDS = ["tool", "public tool", "prompt", "resource template"]


@pytest.mark.parametrize(("options", "message"), NAMED, ids=NAMED_IDS)
async def test_an_sdk_server_with_a_misnamed_scope_map_refuses_to_start(
    options: dict[str, Any], message: str
) -> None:
    app = protect_mcp_app(
        notes_server(),
        resource=RESOURCE,
        issuer=ISSUER,
        verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI),
        policy=ProtectionPolicy(**options),
    )
    with pytest.raises(ConfigurationError) as info:
        await start(app)
    assert str(info.value) == message


async def test_names_that_exist_start() -> None:
    policy = ProtectionPolicy(
        tool_scopes={"add_note": ["mcp:write"]},
        prompt_scopes={"summary": ["mcp:read"]},
        resource_scopes={"user://notes/{note_id}": ["notes:read"]},
        public_tools=["search"],
        mixed_auth=True,
    )
    app = protect_mcp_app(
        notes_server(),
        resource=RESOURCE,
        issuer=ISSUER,
        verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI),
        policy=policy,
    )
    await start(app)


@pytest.mark.parametrize(("options", "message"), NAMED, ids=NAMED_IDS)
async def test_a_fastmcp_server_with_a_misnamed_scope_map_refuses_to_start(
    options: dict[str, Any], message: str
) -> None:
    pytest.importorskip("fastmcp")
    from fastmcp import FastMCP

    from ostiary.resource.fastmcp_adapter import protect_fastmcp_app

    server = FastMCP("notes")

    @server.tool
    def add_note(text: str) -> str:
        """Saves a note."""
        return "saved"

    @server.tool
    def search(query: str) -> str:
        """Searches."""
        return query

    @server.prompt
    def summary() -> str:
        """Summarises."""
        return "summarise"

    @server.resource("user://notes/{note_id}")
    def note(note_id: str) -> str:
        """One note."""
        return note_id

    app = protect_fastmcp_app(
        server,
        resource=RESOURCE,
        issuer=ISSUER,
        verifier=JWTVerifier(ISSUER, RESOURCE, JWKS_URI),
        policy=ProtectionPolicy(**options),
    )
    with pytest.raises(ConfigurationError) as info:
        await start(app)
    assert str(info.value) == message


def test_a_server_with_nothing_says_none() -> None:
    names = ServerNames(frozenset(), frozenset(), frozenset())
    with pytest.raises(ConfigurationError) as info:
        validate_names(ProtectionPolicy(tool_scopes={"x": ["s"]}), names)
    assert (
        str(info.value) == "tool_scopes names 'x', which the server does not have (its tools: none)"
    )
