"""BearerAuthMiddleware and the MCP tool scope guard: exact wire behaviour over ASGI."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ostiary.resource.metadata import protected_resource_metadata_url
from ostiary.resource.middleware import BearerAuthMiddleware, current_principal, require_principal
from ostiary.resource.scopes import (
    McpPublicAccess,
    McpToolScopeGuard,
    ResourcePolicy,
    ScopePolicy,
    ToolPolicy,
)
from ostiary.resource.verifiers import IntrospectionVerifier, JWTVerifier
from tests.resource._rs_support import (
    INTROSPECT_URI,
    ISSUER,
    JWKS_URI,
    RESOURCE,
    RS_CLIENT_ID,
    RS_CLIENT_SECRET,
    AuthorizationServerDouble,
    SigningKey,
    claims,
    mint,
)

PRM = protected_resource_metadata_url(RESOURCE)
KEY = SigningKey.generate("ES256", kid="k1")
HIERARCHY = ScopePolicy({"mcp:write": ("mcp:read",)})


async def whoami(request: Request) -> Response:
    principal = current_principal()
    assert principal is require_principal()
    assert request.state.principal is principal
    return JSONResponse(
        {"sub": request.user.display_name, "scopes": request.auth.scopes, "cv": principal.subject}
    )


async def rpc(request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"raw": (await request.body()).decode()}, status_code=400)
    request_id = body.get("id") if isinstance(body, dict) else None
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": {"seen": body}})


async def health(request: Request) -> Response:
    return Response("ok")


def build_app(verifier: JWTVerifier, **options: Any) -> BearerAuthMiddleware:
    inner = Starlette(
        routes=[
            Route("/mcp", rpc, methods=["POST"]),
            Route("/whoami", whoami),
            Route("/healthz", health, methods=["GET", "OPTIONS"]),
        ]
    )
    return BearerAuthMiddleware(
        inner, verifier=verifier, resource_metadata_url=PRM, exempt_paths=["/healthz"], **options
    )


@pytest.fixture
async def auth_server() -> AuthorizationServerDouble:
    return AuthorizationServerDouble(keys=[KEY])


@pytest.fixture
async def verifier(auth_server: AuthorizationServerDouble) -> AsyncIterator[JWTVerifier]:
    async with auth_server.client() as http:
        yield JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://mcp.example.com"
    )


async def test_no_token_gets_bare_challenge_with_scope(verifier: JWTVerifier) -> None:
    app = build_app(verifier, required_scopes=["mcp:read"])
    async with client_for(app) as client:
        response = await client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{PRM}"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "An access token is required.",
    }


async def test_other_scheme_is_treated_as_no_credentials(verifier: JWTVerifier) -> None:
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{PRM}"'


async def test_valid_token_reaches_app_with_principal(verifier: JWTVerifier) -> None:
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {mint(KEY)}"})
    assert response.status_code == 200
    assert response.json() == {
        "sub": "user-123",
        "scopes": ["mcp:read", "mcp:write"],
        "cv": "user-123",
    }
    assert current_principal() is None


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_scheme_is_case_insensitive(verifier: JWTVerifier, scheme: str) -> None:
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", headers={"Authorization": f"{scheme} {mint(KEY)}"})
    assert response.status_code == 200


async def test_wrong_audience_is_invalid_token(verifier: JWTVerifier) -> None:
    token = mint(KEY, aud="https://other.example.com/mcp")
    async with client_for(build_app(verifier, required_scopes=["mcp:read"])) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token was issued for '
        f'another resource.", scope="mcp:read", resource_metadata="{PRM}"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token was issued for another resource.",
    }


async def test_expired_token_is_invalid_token(verifier: JWTVerifier) -> None:
    now = int(time.time())
    token = mint(KEY, iat=now - 900, exp=now - 300)
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired.", '
        f'resource_metadata="{PRM}"'
    )


async def test_query_string_token_is_invalid_request(verifier: JWTVerifier) -> None:
    """OAuth 2.1 §5.2: the URI query method is gone; refuse it loudly (RFC 6750 §3.1)."""
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", params={"access_token": mint(KEY)})
    assert response.status_code == 400
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_request", error_description="Send the access token in the '
        f'Authorization header, never in the URL.", resource_metadata="{PRM}"'
    )


async def test_query_string_token_is_refused_even_with_header(verifier: JWTVerifier) -> None:
    token = mint(KEY)
    async with client_for(build_app(verifier)) as client:
        response = await client.get(
            "/whoami", params={"access_token": token}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", "Bearer ab=c", "Bearer é"])
async def test_malformed_bearer_credential_is_invalid_request(
    verifier: JWTVerifier, value: str
) -> None:
    app = build_app(verifier)
    async with client_for(app) as client:
        response = await client.get(
            "/whoami", headers=[(b"authorization", value.encode("latin-1"))]
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_two_authorization_headers_are_invalid_request(verifier: JWTVerifier) -> None:
    token = mint(KEY)
    headers = [(b"authorization", f"Bearer {token}".encode())] * 2
    async with client_for(build_app(verifier)) as client:
        response = await client.get("/whoami", headers=headers)
    assert response.status_code == 400
    assert response.json()["error_description"] == "Send exactly one Authorization header."


async def test_missing_endpoint_scope_is_403_with_all_needed_scopes(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:read")
    app = build_app(verifier, required_scopes=["mcp:read", "mcp:admin"])
    async with client_for(app) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="The access token does not carry '
        f'the scope this request needs.", scope="mcp:read mcp:admin", resource_metadata="{PRM}"'
    )


async def test_scope_hierarchy_satisfies_narrower_scope(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:write")
    app = build_app(verifier, required_scopes=["mcp:read"], scope_policy=HIERARCHY)
    async with client_for(app) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_exempt_path_and_preflight_need_no_token(verifier: JWTVerifier) -> None:
    async with client_for(build_app(verifier)) as client:
        assert (await client.get("/healthz")).status_code == 200
        preflight = await client.options(
            "/whoami",
            headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET"},
        )
        plain_options = await client.options("/whoami")
    assert preflight.status_code == 405  # reached the app, which has no OPTIONS handler
    assert plain_options.status_code == 401


async def test_unreachable_authorization_server_is_503(
    auth_server: AuthorizationServerDouble,
) -> None:
    auth_server.jwks_status = 503
    async with auth_server.client() as http:
        app = build_app(JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http))
        async with client_for(app) as client:
            response = await client.get("/whoami", headers={"Authorization": f"Bearer {mint(KEY)}"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "www-authenticate" not in response.headers
    assert response.json()["error"] == "temporarily_unavailable"


async def test_lifespan_passes_through(verifier: JWTVerifier) -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(scope["type"])

    middleware = BearerAuthMiddleware(app, verifier=verifier, resource_metadata_url=PRM)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert events == ["lifespan"]


# --- per-tool scopes ---------------------------------------------------------------------

TOOLS = ToolPolicy({"create_note": ("mcp:write",), "delete_all": ("mcp:admin", "mcp:write")})


def tool_app(verifier: JWTVerifier) -> BearerAuthMiddleware:
    guard = McpToolScopeGuard(TOOLS, HIERARCHY, endpoint_scopes=("mcp:read",))
    return build_app(verifier, required_scopes=["mcp:read"], scope_policy=HIERARCHY, guards=[guard])


def call(name: str, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name}}


async def post(app: Any, body: Any, token: str, **headers: str) -> httpx.Response:
    async with client_for(app) as client:
        return await client.post(
            "/mcp",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **headers,
            },
        )


async def test_tool_needing_missing_scope_is_403_before_the_server(verifier: JWTVerifier) -> None:
    response = await post(tool_app(verifier), call("delete_all"), mint(KEY, scope="mcp:write"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="The access token does not carry '
        f'the scope this request needs.", scope="mcp:read mcp:admin mcp:write", '
        f'resource_metadata="{PRM}"'
    )


async def test_tool_with_enough_scope_reaches_server_with_intact_body(
    verifier: JWTVerifier,
) -> None:
    body = call("create_note")
    response = await post(tool_app(verifier), body, mint(KEY, scope="mcp:write"))
    assert response.status_code == 200
    assert response.json()["result"]["seen"] == body


async def test_unlisted_tool_and_other_methods_need_endpoint_scopes_only(
    verifier: JWTVerifier,
) -> None:
    token = mint(KEY, scope="mcp:read")
    assert (await post(tool_app(verifier), call("echo"), token)).status_code == 200
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert (await post(tool_app(verifier), listing, token)).status_code == 200


async def test_batch_names_every_needed_scope(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:read")
    response = await post(
        tool_app(verifier), [call("create_note", 1), call("delete_all", 2)], token
    )
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'scope="mcp:read mcp:write mcp:admin"' in challenge


async def test_mcp_name_header_mismatch_is_400(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:read")
    response = await post(
        tool_app(verifier),
        call("delete_all", 7),
        token,
        **{"Mcp-Method": "tools/call", "Mcp-Name": "echo"},
    )
    assert response.status_code == 400
    assert "www-authenticate" not in response.headers
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": -32020,
            "message": "Mcp-Name header does not match the request body's 'name' parameter",
        },
    }


async def test_mcp_method_header_mismatch_is_400(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:write")
    response = await post(
        tool_app(verifier), call("create_note"), token, **{"Mcp-Method": "tools/list"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


async def test_matching_headers_including_base64_name_pass(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:write")
    headers = {"Mcp-Method": "tools/call", "Mcp-Name": "=?base64?Y3JlYXRlX25vdGU=?="}
    assert (
        await post(tool_app(verifier), call("create_note"), token, **headers)
    ).status_code == 200


async def test_unparseable_body_is_a_json_rpc_parse_error(verifier: JWTVerifier) -> None:
    """The guard reads the body with ostiary.jsonbody and answers its refusal as the MCP SDK
    answers a parse error (400, -32700), so the server never parses what the guard could not."""
    async with client_for(tool_app(verifier)) as client:
        response = await client.post(
            "/mcp",
            content=b"{not json",
            headers={"Authorization": f"Bearer {mint(KEY)}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error: request body is not valid JSON"},
    }
    assert "www-authenticate" not in response.headers


async def test_oversized_body_is_413(verifier: JWTVerifier) -> None:
    guard = McpToolScopeGuard(TOOLS, max_body_bytes=64)
    app = build_app(verifier, guards=[guard])
    response = await post(app, {**call("create_note"), "pad": "x" * 100}, mint(KEY))
    assert response.status_code == 413


def test_scope_policy_is_transitive() -> None:
    policy = ScopePolicy({"admin": ("write",), "write": ("read",)})
    assert policy.expand(["admin"]) == {"admin", "write", "read"}
    assert policy.missing(["admin"], ["read", "other"]) == ("other",)
    assert policy.missing([], []) == ()


def test_tool_policy_default() -> None:
    policy = ToolPolicy({"a": ()}, default=("mcp:read",))
    assert policy.scopes_for("a") == ()
    assert policy.scopes_for("b") == ("mcp:read",)
    assert bool(policy)
    assert not ToolPolicy()


# --- tokenless access to public tools -------------------------------------------------------


def public_app(verifier: JWTVerifier) -> BearerAuthMiddleware:
    return build_app(verifier, anonymous=McpPublicAccess(["public_search"]))


async def post_anonymous(app: Any, body: Any, **headers: str) -> httpx.Response:
    async with client_for(app) as client:
        return await client.post(
            "/mcp",
            content=json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        )


@pytest.mark.parametrize(
    "body",
    [
        call("public_search"),
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "result": {}},
        [call("public_search", 1), {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}],
    ],
)
async def test_public_operations_pass_without_token(verifier: JWTVerifier, body: Any) -> None:
    response = await post_anonymous(public_app(verifier), body)
    assert response.status_code == 200
    assert response.json()["result"]["seen"] == body


@pytest.mark.parametrize(
    "body",
    [
        call("create_note"),
        [call("public_search", 1), call("create_note", 2)],
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "resources/read",
            "params": {"uri": "user://profile"},
        },
        [],
        "just a string",
    ],
)
async def test_anything_else_without_token_gets_the_bare_challenge(
    verifier: JWTVerifier, body: Any
) -> None:
    response = await post_anonymous(public_app(verifier), body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{PRM}"'


async def test_public_access_checks_routing_headers(verifier: JWTVerifier) -> None:
    response = await post_anonymous(
        public_app(verifier), call("create_note"), **{"Mcp-Name": "public_search"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020


async def test_public_access_lets_delete_through_but_not_get_or_put(
    verifier: JWTVerifier,
) -> None:
    async with client_for(public_app(verifier)) as client:
        get = await client.get("/mcp")
        put = await client.put("/mcp")
        delete = await client.delete("/mcp")
    # A server-to-client stream is only for an authenticated caller: the bare challenge.
    assert get.status_code == 401
    assert get.headers["www-authenticate"] == f'Bearer resource_metadata="{PRM}"'
    assert put.status_code == 401
    assert delete.status_code == 405  # reached the app, which only serves POST there


async def test_tool_check_does_not_depend_on_content_type(verifier: JWTVerifier) -> None:
    async with client_for(tool_app(verifier)) as client:
        response = await client.post(
            "/mcp",
            content=json.dumps(call("delete_all")),
            headers={"Authorization": f"Bearer {mint(KEY)}", "Content-Type": "text/plain"},
        )
    assert response.status_code == 403


def test_websocket_needs_a_token_too(verifier: JWTVerifier) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def echo_subject(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(require_principal().subject)
        await websocket.close()

    app = BearerAuthMiddleware(
        Starlette(routes=[WebSocketRoute("/ws", echo_subject)]),
        verifier=verifier,
        resource_metadata_url=PRM,
    )
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
            pass
        assert info.value.code == 1008
        headers = {"Authorization": f"Bearer {mint(KEY)}"}
        with client.websocket_connect("/ws", headers=headers) as websocket:
            assert websocket.receive_text() == "user-123"


# --- prompts and resources ------------------------------------------------------------------


def rich_app(verifier: JWTVerifier) -> BearerAuthMiddleware:
    guard = McpToolScopeGuard(
        ToolPolicy(),
        endpoint_scopes=("mcp:read",),
        prompts=ToolPolicy({"secret_prompt": ("prompts:secret",)}),
        resources=ResourcePolicy(
            {"user://profile": ("profile:read",), "user://notes/{note_id}": ("notes:read",)}
        ),
    )
    return build_app(verifier, required_scopes=["mcp:read"], guards=[guard])


def read(uri: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": uri}}


@pytest.mark.parametrize(
    ("body", "needed"),
    [
        (read("user://notes/42"), "mcp:read notes:read"),
        (read("user://profile"), "mcp:read profile:read"),
        (
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "prompts/get",
                "params": {"name": "secret_prompt"},
            },
            "mcp:read prompts:secret",
        ),
    ],
)
async def test_prompt_and_resource_scopes_are_enforced(
    verifier: JWTVerifier, body: dict[str, Any], needed: str
) -> None:
    response = await post(rich_app(verifier), body, mint(KEY, scope="mcp:read"))
    assert response.status_code == 403
    assert f'scope="{needed}"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("uri", ["user://notes/42/extra", "user://other", "user://notes/"])
async def test_unlisted_resources_need_only_endpoint_scopes(
    verifier: JWTVerifier, uri: str
) -> None:
    response = await post(rich_app(verifier), read(uri), mint(KEY, scope="mcp:read"))
    assert response.status_code == 200


async def test_resource_read_with_scope_passes(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:read notes:read")
    assert (await post(rich_app(verifier), read("user://notes/7"), token)).status_code == 200


async def test_mcp_name_must_match_resource_uri(verifier: JWTVerifier) -> None:
    token = mint(KEY, scope="mcp:read notes:read")
    response = await post(
        rich_app(verifier), read("user://profile"), token, **{"Mcp-Name": "user://notes/7"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Mcp-Name header does not match the request body's 'uri' parameter"
    )


def test_resource_policy_prefers_exact_uris() -> None:
    policy = ResourcePolicy({"a://{x}": ("t",), "a://b": ("e",)})
    assert policy.scopes_for("a://b") == ("e",)
    assert policy.scopes_for("a://c") == ("t",)
    assert policy.scopes_for("a://c/d") == ()
    assert bool(policy)
    assert not ResourcePolicy()


DPOP_BOUND = "The access token is DPoP-bound: send it with the DPoP scheme and a proof."
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


async def _refused_as_bearer(verifier: Any, token: str) -> None:
    """RFC 9449 §7.2, RFC 7800 §3: a cnf.jkt token is no bearer token, even where the RS does
    not accept DPoP at all (``dpop`` unset)."""
    async with client_for(build_app(verifier, required_scopes=["mcp:read"])) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{DPOP_BOUND}", scope="mcp:read", '
        f'resource_metadata="{PRM}"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"error": "invalid_token", "error_description": DPOP_BOUND}


async def test_a_remote_dpop_bound_jwt_is_not_a_bearer_token(verifier: JWTVerifier) -> None:
    await _refused_as_bearer(verifier, mint(KEY, cnf={"jkt": JKT}))


async def test_an_introspected_dpop_bound_token_is_not_a_bearer_token(
    auth_server: AuthorizationServerDouble,
) -> None:
    auth_server.introspection["opaque-dpop"] = {
        "active": True,
        **claims(),
        "cnf": {"jkt": JKT},
        "token_type": "DPoP",
    }
    async with auth_server.client() as http:
        verifier = IntrospectionVerifier(
            INTROSPECT_URI,
            RS_CLIENT_ID,
            RS_CLIENT_SECRET,
            RESOURCE,
            issuer=ISSUER,
            http_client=http,
        )
        await _refused_as_bearer(verifier, "opaque-dpop")
