"""A test enterprise identity provider on a real loopback port: its JWKS and an RFC 8693 token
endpoint that trades a known ID token for an ID-JAG (SEP-990 leg one).

The authorization server under test fetches the JWKS over HTTP through its SSRF guard (the
test settings set ``security.allow_private_fetch``); the client's ``IdJagAssertionProvider``
calls the token endpoint over HTTP too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@dataclass
class EnterpriseIdp:
    """The IdP's state: its signing key, the users' ID tokens, and the MCP client mapping."""

    issuer: str = ""
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", {"kid": "k1"}))
    #: ID token presented at the exchange -> the user's ``sub`` (and ``email``).
    id_tokens: dict[str, str] = field(default_factory=dict)
    #: client_id at the IdP -> client_id at the MCP authorization server.
    clients: dict[str, str] = field(default_factory=dict)
    jwks_fetches: int = 0

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    def rotate(self, kid: str) -> None:
        self.key = ECKey.generate_key("P-256", {"kid": kid})

    def id_jag(
        self,
        *,
        sub: str,
        aud: str,
        client_id: str,
        resource: str | None = None,
        scope: str | None = None,
        key: ECKey | OctKey | None = None,
        header: dict[str, Any] | None = None,
        lifetime: int = 300,
        **claims: Any,
    ) -> str:
        """Sign an ID-JAG (header typ ``oauth-id-jag+jwt``); ``claims`` override the defaults."""
        now = int(time.time())
        signer = key or self.key
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "client_id": client_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + lifetime,
            "email": f"{sub}@acme.example",
        }
        if resource is not None:
            body["resource"] = resource
        if scope is not None:
            body["scope"] = scope
        body.update(claims)
        jose = {"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": signer.kid, **(header or {})}
        return jwt.encode(jose, body, signer)


def _handler(idp: EnterpriseIdp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/jwks":
                self._json(404, {"error": "not_found"})
                return
            idp.jwks_fetches += 1
            self._json(200, {"keys": [idp.key.as_dict(private=False)]})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            sub = idp.id_tokens.get(form.get("subject_token", ""))
            mcp_client = idp.clients.get(form.get("client_id", ""))
            if (
                self.path != "/token"
                or form.get("grant_type") != TOKEN_EXCHANGE
                or form.get("requested_token_type") != ID_JAG_TOKEN_TYPE
                or form.get("subject_token_type") != ID_TOKEN_TYPE
                or sub is None
                or mcp_client is None
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            token = idp.id_jag(
                sub=sub,
                aud=form["audience"],
                client_id=mcp_client,
                resource=form.get("resource"),
                scope="mcp:read mcp:write",
            )
            self._json(
                200,
                {
                    "access_token": token,
                    "issued_token_type": ID_JAG_TOKEN_TYPE,
                    "token_type": "N_A",
                    "expires_in": 300,
                },
            )

    return Handler


@contextmanager
def running_idp() -> Iterator[EnterpriseIdp]:
    """Serve a fresh :class:`EnterpriseIdp` on 127.0.0.1 until the block ends."""
    idp = EnterpriseIdp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    idp.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
