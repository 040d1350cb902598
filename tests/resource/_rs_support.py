"""Real keys, real signed tokens, a real JWKS and a real RFC 7662 endpoint for the RS tests."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ISSUER = "https://auth.example.com"
RESOURCE = "https://mcp.example.com/mcp"
JWKS_URI = f"{ISSUER}/.well-known/jwks.json"
INTROSPECT_URI = f"{ISSUER}/introspect"
RS_CLIENT_ID = "mcp-rs"
RS_CLIENT_SECRET = "s3cret/with:odd chars"

Key = ECKey | OKPKey | RSAKey


@dataclass
class SigningKey:
    key: Key
    alg: str
    kid: str

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> SigningKey:
        key: Key
        if alg == "ES256":
            key = ECKey.generate_key("P-256")
        elif alg in ("EdDSA", "Ed25519"):
            key = OKPKey.generate_key("Ed25519")
        else:
            key = RSAKey.generate_key(2048)
        return cls(key=key, alg=alg, kid=kid or key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        data = dict(self.key.as_dict(private=False))
        data.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return data


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-123",
        "aud": RESOURCE,
        "client_id": "client-abc",
        "scope": "mcp:read mcp:write",
        "jti": "jti-1",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: SigningKey, header: Mapping[str, Any] | None = None, **claim_overrides: Any) -> str:
    hdr: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    hdr.update(header or {})
    hdr = {k: v for k, v in hdr.items() if v is not None}
    return jwt.encode(hdr, claims(**claim_overrides), key.key, algorithms=[key.alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: Mapping[str, Any], body: Mapping[str, Any], sig: bytes = b"") -> str:
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(body).encode()), b64(sig)))


@dataclass
class AuthorizationServerDouble:
    """A small real AS surface: JWKS + RFC 7662 introspection, served by Starlette."""

    keys: list[SigningKey] = field(default_factory=list)
    introspection: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks_hits: int = 0
    introspection_hits: int = 0
    jwks_status: int = 200
    jwks_override: Any = None
    introspection_raw: bytes | None = None

    async def jwks(self, request: Request) -> Response:
        self.jwks_hits += 1
        if self.jwks_status != 200:
            return Response(status_code=self.jwks_status)
        if self.jwks_override is not None:
            return JSONResponse(self.jwks_override)
        return JSONResponse({"keys": [k.public_jwk() for k in self.keys]})

    async def introspect(self, request: Request) -> Response:
        self.introspection_hits += 1
        expected = base64.b64encode(b"mcp-rs:s3cret%2Fwith%3Aodd%20chars").decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.introspection_raw is not None:
            return Response(self.introspection_raw, media_type="application/json")
        form = await request.form()
        assert form.get("token_type_hint") == "access_token"
        return JSONResponse(self.introspection.get(str(form.get("token")), {"active": False}))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/jwks.json", self.jwks),
                Route("/introspect", self.introspect, methods=["POST"]),
            ]
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app()), base_url=ISSUER)
