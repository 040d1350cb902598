"""A small real authorization server and MCP resource server for client tests (Starlette).

Everything lives on one origin, ``http://localhost``: the MCP endpoint at ``/mcp``, PRM at
``/.well-known/oauth-protected-resource/mcp``, and authorization servers under path
issuers (``http://localhost/as1``, ``/as2``) whose metadata sits at the RFC 8414
path-inserted location. :class:`World` records every request the servers saw so tests can
assert exactly what the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from ostiary.client.authorization import CallbackResult, callback_result_from_url

ORIGIN = "http://localhost"
MCP_URL = f"{ORIGIN}/mcp"
PRM_URL = f"{ORIGIN}/.well-known/oauth-protected-resource/mcp"


@dataclass
class Issued:
    client_id: str
    scope: str
    expires_at: float
    issuer: str
    dpop_jkt: str | None = None


AS_NONCE = "as-nonce-1"
RS_NONCE = "rs-nonce-1"


def _proof_claims(proof: str | None) -> dict[str, Any] | None:
    """Verify a DPoP proof with the key in its own header; its claims, or None."""
    if not proof:
        return None
    header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
    if header.get("typ") != "dpop+jwt":
        return None
    key = ECKey.import_key(header["jwk"])
    claims = dict(jwt.decode(proof, key, algorithms=["ES256"]).claims)
    claims["jkt"] = key.thumbprint()
    return claims


@dataclass
class World:
    """Server-side state and knobs."""

    origin: str = ORIGIN
    active_issuer: str = f"{ORIGIN}/as1"
    required_scopes: tuple[str, ...] = ()
    challenge_scope: str | None = None
    prm_scopes: list[str] | None = None
    prm_resource: str = MCP_URL
    prm_html: bool = False
    prm_missing: bool = False
    prm_redirect: str | None = None
    as_malformed: bool = False
    as_scopes: list[str] | None = None
    pkce_methods: list[str] | None = field(default_factory=lambda: ["S256"])
    iss_supported: bool = True
    iss_mode: str = "correct"  # correct | omit | wrong
    metadata_issuer: str | None = None
    auth_methods: list[str] = field(default_factory=lambda: ["none"])
    access_ttl: int = 3600
    issue_refresh: bool = True
    ungrantable: set[str] = field(default_factory=set)
    dpop: bool = False
    dpop_proofs: list[dict[str, Any]] = field(default_factory=list)
    # records
    registrations: list[dict[str, Any]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_auth_headers: list[str | None] = field(default_factory=list)
    revocations: list[dict[str, str]] = field(default_factory=list)
    mcp_auth_headers: list[str | None] = field(default_factory=list)
    # state
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, Issued] = field(default_factory=dict)
    refresh: dict[str, Issued] = field(default_factory=dict)

    @classmethod
    def at(cls, origin: str) -> World:
        """A world served from ``origin`` instead of ``http://localhost``."""
        return cls(origin=origin, active_issuer=f"{origin}/as1", prm_resource=f"{origin}/mcp")

    def revoke_all(self) -> None:
        self.access.clear()
        self.refresh.clear()


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def build_app(world: World, mcp_app: Starlette | None = None) -> Starlette:
    """The Starlette app serving both the MCP server and the authorization servers."""

    async def prm(request: Request) -> Response:
        if world.prm_redirect is not None:
            return RedirectResponse(world.prm_redirect, status_code=302)
        if world.prm_missing:
            return JSONResponse({"error": "not found"}, status_code=404)
        if world.prm_html:
            return HTMLResponse("<html>not metadata</html>")
        body: dict[str, Any] = {
            "resource": world.prm_resource,
            "authorization_servers": [world.active_issuer],
        }
        if world.prm_scopes is not None:
            body["scopes_supported"] = world.prm_scopes
        return JSONResponse(body)

    async def as_metadata(request: Request) -> Response:
        name = request.path_params["name"]
        issuer = f"{world.origin}/{name}"
        body: dict[str, Any] = {
            "issuer": world.metadata_issuer or issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "revocation_endpoint": f"{issuer}/revoke",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": world.auth_methods,
            "authorization_response_iss_parameter_supported": world.iss_supported,
        }
        if world.pkce_methods is not None:
            body["code_challenge_methods_supported"] = world.pkce_methods
        if world.as_scopes is not None:
            body["scopes_supported"] = world.as_scopes
        if world.dpop:
            body["dpop_signing_alg_values_supported"] = ["ES256"]
        if world.as_malformed:
            body["token_endpoint"] = 42
        return JSONResponse(body)

    async def register(request: Request) -> Response:
        body = await request.json()
        world.registrations.append(body)
        name = request.path_params["name"]
        client_id = f"{name}-client-{len(world.registrations)}"
        return JSONResponse(
            {"client_id": client_id, "token_endpoint_auth_method": "none", **body}, status_code=201
        )

    async def authorize(request: Request) -> Response:
        query = dict(request.query_params)
        world.authorize_requests.append(query)
        issuer = f"{world.origin}/{request.path_params['name']}"
        code = secrets.token_urlsafe(8)
        world.codes[code] = {**query, "issuer": issuer}
        params = {"code": code, "state": query["state"]}
        if world.iss_mode == "correct":
            params["iss"] = issuer
        elif world.iss_mode == "wrong":
            params["iss"] = "https://evil.example.com"
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(params)}", status_code=302)

    def _issue(client_id: str, scope: str, issuer: str, jkt: str | None = None) -> dict[str, Any]:
        access = secrets.token_urlsafe(8)
        now = time.time()
        scope = " ".join(s for s in scope.split() if s not in world.ungrantable)
        world.access[access] = Issued(client_id, scope, now + world.access_ttl, issuer, jkt)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": world.access_ttl,
            "scope": scope,
        }
        if world.issue_refresh:
            refresh = secrets.token_urlsafe(8)
            world.refresh[refresh] = Issued(client_id, scope, now + 86400, issuer)
            body["refresh_token"] = refresh
        return body

    async def token(request: Request) -> Response:
        form = {name: str(value) for name, value in (await request.form()).items()}
        world.token_requests.append(form)
        world.token_auth_headers.append(request.headers.get("authorization"))
        issuer = f"{world.origin}/{request.path_params['name']}"
        grant = form.get("grant_type")
        proof = _proof_claims(request.headers.get("dpop")) if world.dpop else None
        if proof is not None:
            world.dpop_proofs.append(proof)
            if proof.get("nonce") != AS_NONCE:
                return JSONResponse(
                    {"error": "use_dpop_nonce"}, status_code=400, headers={"DPoP-Nonce": AS_NONCE}
                )
        jkt = proof["jkt"] if proof else None
        if grant == "authorization_code":
            pending = world.codes.pop(form.get("code", ""), None)
            if pending is None or _s256(form.get("code_verifier", "")) != pending.get(
                "code_challenge"
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                _issue(pending["client_id"], pending.get("scope", ""), pending["issuer"], jkt)
            )
        if grant == "refresh_token":
            old = world.refresh.pop(form.get("refresh_token", ""), None)
            if old is None:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "revoked"}, status_code=400
                )
            return JSONResponse(_issue(old.client_id, old.scope, issuer))
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if form.get("assertion") != "good-assertion":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(_issue("workload", form.get("scope", ""), issuer))
        if grant == "client_credentials":
            return JSONResponse(_issue("machine", form.get("scope", ""), issuer))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    async def revoke(request: Request) -> Response:
        form = {name: str(value) for name, value in (await request.form()).items()}
        world.revocations.append(form)
        world.refresh.pop(form.get("token", ""), None)
        world.access.pop(form.get("token", ""), None)
        return Response(status_code=200)

    def _challenge(status: int, error: str | None, scope: str | None) -> Response:
        prm_url = f"{world.origin}/.well-known/oauth-protected-resource/mcp"
        parts = [f'resource_metadata="{prm_url}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return JSONResponse(
            {"error": error or "unauthorized"},
            status_code=status,
            headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)},
        )

    def deny_dpop(issued: Issued, scheme: str, token: str, proof: str | None) -> Response | None:
        claims = _proof_claims(proof)
        if scheme != "DPoP" or claims is None or claims["jkt"] != issued.dpop_jkt:
            return _challenge(401, "invalid_token", None)
        world.dpop_proofs.append(claims)
        if claims.get("nonce") != RS_NONCE:
            denial = _challenge(401, "use_dpop_nonce", None)
            denial.headers["DPoP-Nonce"] = RS_NONCE
            return denial
        return None

    def deny(header: str | None, proof: str | None = None) -> Response | None:
        """The RS decision: None to let the request through, else the challenge."""
        world.mcp_auth_headers.append(header)
        scheme, _, token_value = (header or "").partition(" ")
        issued = world.access.get(token_value)
        if issued is not None and issued.dpop_jkt is not None:
            return deny_dpop(issued, scheme, token_value, proof)
        if scheme != "Bearer":
            issued = None
        if (
            issued is None
            or issued.expires_at < time.time()
            or issued.issuer != world.active_issuer
        ):
            error = "invalid_token" if header else None
            return _challenge(401, error, world.challenge_scope)
        missing = [s for s in world.required_scopes if s not in issued.scope.split()]
        if missing:
            return _challenge(403, "insufficient_scope", " ".join(world.required_scopes))
        return None

    async def mcp(request: Request) -> Response:
        denial = deny(request.headers.get("authorization"), request.headers.get("dpop"))
        return denial or JSONResponse({"ok": True})

    routes: list[BaseRoute] = [
        Route("/.well-known/oauth-protected-resource/mcp", prm),
        Route("/.well-known/oauth-authorization-server/{name}", as_metadata),
        Route("/{name}/register", register, methods=["POST"]),
        Route("/{name}/authorize", authorize),
        Route("/{name}/token", token, methods=["POST"]),
        Route("/{name}/revoke", revoke, methods=["POST"]),
    ]
    if mcp_app is None:
        return Starlette(routes=[*routes, Route("/mcp", mcp, methods=["GET", "POST"])])

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            denial = deny(Request(scope).headers.get("authorization"))
            if denial is not None:
                await denial(scope, receive, send)
                return
        await mcp_app(scope, receive, send)

    return Starlette(
        routes=[*routes, Mount("/", app=guarded)],
        lifespan=mcp_app.router.lifespan_context,
    )


class Browser:
    """The user's side of the redirect: visits the authorization URL, reads the redirect."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.visited: list[str] = []

    async def __call__(self, authorization_url: str) -> CallbackResult:
        self.visited.append(authorization_url)
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get(authorization_url)
        return callback_result_from_url(response.headers["location"])
