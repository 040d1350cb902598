"""An MCP app served beside the authorization server, in one process and on one port.

:class:`CombinedApp` routes to the MCP app when one of its routes matches and runs both
lifespans. The MCP app's bearer checks verify RFC 9068 JWTs exactly as a remote resource
server would (:class:`JWTVerifier`: ``typ``, ``alg`` allow-list, ``iss``, ``aud``,
``exp``/``nbf``), but its JWKS comes straight from the in-process key ring through
:class:`KeyRingTransport`, so there is no HTTP round trip and a rotation is seen at the next
unknown ``kid``; :class:`RevocationCheckingVerifier` adds the AS's own revocation record
(RFC 7009) at no cost. Used by the demo (:mod:`ostiary.assembly.demo`) and the embedded
gateway (:mod:`ostiary.assembly.gateway`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.core.context import ServerContext
from ostiary.errors import InvalidTokenError
from ostiary.resource.verifiers import JWTVerifier, Principal, TokenVerifier

__all__ = [
    "CombinedApp",
    "KeyRingTransport",
    "RevocationCheckingVerifier",
    "local_jwt_verifier",
]

#: Path of the JWKS the local transport answers (never reaches the network).
_LOCAL_JWKS: Final = "http://ostiary.local/jwks"


class KeyRingTransport(httpx.AsyncBaseTransport):
    """An httpx transport answering any request with the AS key ring's public JWKS."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve the JWKS of the current ring (public halves only)."""
        ring = await self.ctx.keys.ring(self.ctx.clock())
        body = json.dumps(ring.jwks()).encode()
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=body, request=request
        )


def local_jwt_verifier(ctx: ServerContext, resource: str) -> JWTVerifier:
    """A JWT verifier for ``resource`` whose keys come from ``ctx``'s key ring in-process."""
    return JWTVerifier(
        ctx.issuer,
        resource,
        _LOCAL_JWKS,
        algorithms=(ctx.settings.tokens.signing_alg,),
        http_client=httpx.AsyncClient(transport=KeyRingTransport(ctx)),
        min_refetch_interval=1,  # a local "fetch" is a dictionary read
        jwks_max_age=60,
        clock=lambda: float(ctx.clock()),
    )


class RevocationCheckingVerifier:
    """A local verifier that also consults the AS's own token book (RFC 7009 at once).

    A JWT stays cryptographically valid until it expires; when the resource server runs in
    the same process as the authorization server it can do better for free: one read of the
    access-token record tells whether the token, or the grant it came from (a revoked grant
    revokes its records), was revoked. A disconnected app therefore loses access on its very
    next call, not at expiry.
    """

    def __init__(self, ctx: ServerContext, inner: TokenVerifier) -> None:
        self._ctx = ctx
        self._inner = inner

    @property
    def issuer(self) -> str | None:
        """The wrapped verifier's issuer, so ``protect_mcp_app`` can check it."""
        issuer = getattr(self._inner, "issuer", None)
        return issuer if isinstance(issuer, str) else None

    @property
    def audience(self) -> str | None:
        """The wrapped verifier's audience, so ``protect_mcp_app`` can check it."""
        audience = getattr(self._inner, "audience", None)
        return audience if isinstance(audience, str) else None

    async def verify(self, token: str) -> Principal:
        principal = await self._inner.verify(token)
        jti = principal.token_id
        record = await self._ctx.storage.get_access_token(self._ctx.tenant, jti) if jti else None
        if record is None or record.revoked_at is not None:
            raise InvalidTokenError("the access token was revoked")
        return principal


class CombinedApp:
    """Route to the MCP app when one of its routes matches, else to the AS; run both lifespans.

    Each app keeps its own middleware (the AS's CORS, the MCP endpoint's Origin guard).
    ``mcp_app`` is a Starlette app, or anything with its ``routes`` and
    ``router.lifespan_context`` (the gateway's).
    """

    def __init__(self, authorization_server: Starlette, mcp_app: Any) -> None:
        self.authorization_server = authorization_server
        self.mcp_app = mcp_app
        self._mcp_routes: Sequence[BaseRoute] = mcp_app.routes
        self.state = authorization_server.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app: ASGIApp = self.authorization_server
        if scope["type"] == "http":
            for route in self._mcp_routes:
                if route.matches(scope)[0] is not Match.NONE:
                    app = self.mcp_app
                    break
        await app(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The AS start-up (storage, keys) first, then the MCP server's."""
        async with (
            self.authorization_server.router.lifespan_context(self.authorization_server),
            self.mcp_app.router.lifespan_context(self.mcp_app),
        ):
            yield

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        started = False
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
        except Exception as exc:  # report, as Starlette does, instead of hanging the server
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": repr(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})
