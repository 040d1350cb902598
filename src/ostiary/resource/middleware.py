"""Bearer-token authentication as pure ASGI middleware (RFC 6750 §2.1, §3; OAuth 2.1 §5.2-5.3).

``BearerAuthMiddleware`` wraps any ASGI app (Starlette, an MCP SDK app, a proxy) and lets a
request through only with a valid access token for this resource:

* The token is read **only** from the ``Authorization`` header, scheme ``Bearer`` matched
  case-insensitively (RFC 9110 §11.1). A request that carries ``access_token`` in the query
  string is refused with 400 ``invalid_request``: OAuth 2.1 §5.2 drops the query method
  (RFC 6750 §2.3) because URLs leak into logs and referrers, and MCP clients "MUST NOT" use
  it. Refusing loudly, instead of silently ignoring the parameter and answering "no token",
  tells the developer exactly what is wrong and keeps a leaked token from looking usable.
* No credentials: 401 with a *bare* challenge (no ``error``), ``resource_metadata`` and the
  endpoint's ``scope`` (RFC 6750 §3.1, RFC 9728 §5.1, MCP "Scope Selection Strategy").
* A bad token: 401 ``invalid_token``. Missing scope: 403 ``insufficient_scope`` naming every
  scope needed. An unreachable authorization server: 503 with ``Retry-After``.
* On success the :class:`~ostiary.resource.verifiers.Principal` is put in
  ``scope["user"]`` (Starlette's ``request.user``), ``scope["auth"]`` (``request.auth``),
  ``scope["state"]["principal"]`` and a context variable read by :func:`current_principal`.

Error bodies are JSON (``{"error", "error_description"}``) with ``Cache-Control: no-store``.
CORS preflight requests (``OPTIONS`` with ``Access-Control-Request-Method``) carry no
credentials by design (Fetch standard), so they pass through to the app or CORS layer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.errors import (
    InsufficientScopeError,
    InvalidDpopProofError,
    InvalidRequestError,
    InvalidTokenError,
    OAuthError,
    TemporarilyUnavailableError,
    UseDpopNonceError,
)
from ostiary.resource.challenges import build_dpop_challenge, challenge_for_error
from ostiary.resource.dpop import DPoPOptions, bound_jkt
from ostiary.resource.scopes import RequestGuard, ScopePolicy
from ostiary.resource.verifiers import Principal, TokenVerifier

__all__ = ["AnonymousAccess", "BearerAuthMiddleware", "current_principal", "require_principal"]

log = logging.getLogger("ostiary.resource")

_principal: ContextVar[Principal | None] = ContextVar("ostiary_principal", default=None)
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def current_principal() -> Principal | None:
    """The principal of the request being handled, or None outside a protected request.

    Works inside tool code of an MCP SDK server mounted behind the middleware: the SDK
    carries the request's context variables into its handler tasks.
    """
    return _principal.get()


def require_principal() -> Principal:
    """Like :func:`current_principal` but raises :class:`InvalidTokenError` when absent."""
    principal = _principal.get()
    if principal is None:
        raise InvalidTokenError(detail="no authenticated principal in this context")
    return principal


AnonymousAccess = Callable[[Scope, Receive], Awaitable[tuple[bool, Receive]]]
"""``(scope, receive) -> (allowed, receive)`` for requests that carry no credentials."""


class _NoCredentials(Exception):
    """The request carried no bearer credentials at all (bare challenge)."""


def _credentials(scope: Scope, *, dpop: bool) -> tuple[str, str]:
    """``(scheme, token)`` from the single ``Authorization`` header: ``bearer`` or ``dpop``.

    Raises:
        _NoCredentials: No Authorization header, or another scheme (``DPoP`` when ``dpop``
            is off).
        InvalidRequestError: Several Authorization headers, a malformed credential, or an
            ``access_token`` query parameter.
    """
    query = scope.get("query_string", b"")
    if b"access_token" in query and any(
        k == "access_token" for k, _ in parse_qsl(query.decode("latin-1"))
    ):
        raise InvalidRequestError(
            "Send the access token in the Authorization header, never in the URL.",
            detail="access_token in query string",
        )
    values = [v for k, v in scope["headers"] if k == b"authorization"]
    if not values:
        raise _NoCredentials
    if len(values) > 1:
        raise InvalidRequestError("Send exactly one Authorization header.")
    raw: bytes = values[0]
    scheme, _, token = raw.decode("latin-1").partition(" ")
    scheme = scheme.lower()
    if scheme != "bearer" and not (dpop and scheme == "dpop"):
        raise _NoCredentials
    token = token.strip(" ")
    if _B64TOKEN.fullmatch(token) is None:
        name = "Bearer" if scheme == "bearer" else "DPoP"
        raise InvalidRequestError(f"The Authorization header is not a valid {name} credential.")
    return scheme, token


def _challenged(error: OAuthError | None) -> bool:
    """RFC 6750 §3: missing credentials and the three Bearer errors carry a challenge.

    Subclasses of ``InvalidRequestError`` raised by guards (header mismatch, body too large)
    are about the MCP message, not the credential, so they get none.
    """
    if error is None or isinstance(
        error,
        InvalidTokenError | InsufficientScopeError | InvalidDpopProofError | UseDpopNonceError,
    ):
        return True
    return type(error) is InvalidRequestError


class BearerAuthMiddleware:
    """Require a valid bearer token for every HTTP request to ``app``.

    Args:
        app: The ASGI app to protect.
        verifier: Verifies tokens (JWT, introspection, or your own).
        resource_metadata_url: PRM URL for challenges (see ``protected_resource_metadata_url``).
        required_scopes: Scopes every request needs.
        challenge_scopes: Scopes named in the 401 challenge; defaults to ``required_scopes``.
        scope_policy: Scope hierarchy used for every sufficiency decision.
        guards: Further checks after verification (e.g. ``McpToolScopeGuard``).
        exempt_paths: Paths served without a token (exact match, e.g. ``/healthz``).
        user_factory: Builds ``scope["user"]`` from the principal (default: the principal).
        anonymous: Decides whether a request *without* credentials may proceed anyway
            (e.g. ``McpPublicAccess`` for public tools); it then runs with no principal.
        dpop: Accept ``Authorization: DPoP`` with a proof (RFC 9449 §7); a refused DPoP
            request gets its error in a ``DPoP`` challenge next to a bare ``Bearer`` one,
            and with ``advertise`` every 401 carries both. A DPoP-bound token (``cnf.jkt``)
            sent as ``Bearer`` is refused with or without it.

    Example:
        >>> from starlette.applications import Starlette
        >>> from ostiary.resource.verifiers import JWTVerifier
        >>> app = BearerAuthMiddleware(
        ...     Starlette(),
        ...     verifier=JWTVerifier("https://as.example", "https://rs.example/mcp"),
        ...     resource_metadata_url="https://rs.example/.well-known/oauth-protected-resource/mcp",
        ...     required_scopes=["mcp:read"],
        ... )
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        resource_metadata_url: str | None,
        required_scopes: Sequence[str] = (),
        challenge_scopes: Sequence[str] | None = None,
        scope_policy: ScopePolicy | None = None,
        guards: Sequence[RequestGuard] = (),
        exempt_paths: Sequence[str] = (),
        user_factory: Callable[[Principal], Any] | None = None,
        anonymous: AnonymousAccess | None = None,
        dpop: DPoPOptions | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.resource_metadata_url = resource_metadata_url
        self.required_scopes = tuple(required_scopes)
        self.challenge_scopes = tuple(
            self.required_scopes if challenge_scopes is None else challenge_scopes
        )
        self.scope_policy = scope_policy or ScopePolicy()
        self.guards = tuple(guards)
        self.exempt_paths = frozenset(exempt_paths)
        self.user_factory = user_factory
        self.anonymous = anonymous
        self.dpop = dpop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http" or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        used: list[str] = []
        try:
            principal = await self._authenticate(scope, used)
            self.scope_policy.check(principal, self.required_scopes)
            for guard in self.guards:
                receive = await guard(scope, receive, principal)
        except _NoCredentials:
            await self._without_credentials(scope, receive, send)
            return
        except OAuthError as error:
            await self._reject(send, error, dpop_used=used == ["dpop"])
            return
        await self._call_as(principal, scope, receive, send)

    async def _call_as(
        self, principal: Principal, scope: Scope, receive: Receive, send: Send
    ) -> None:
        user = principal if self.user_factory is None else self.user_factory(principal)
        scope["user"] = user
        scope["auth"] = AuthCredentials(list(principal.scopes))
        scope["state"] = {**scope.get("state", {}), "principal": principal}
        reset = _principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _principal.reset(reset)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """WebSockets get the same check; a refusal closes the handshake (HTTP 403)."""
        if scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
            self.scope_policy.check(principal, self.required_scopes)
        except (_NoCredentials, OAuthError):
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._call_as(principal, scope, receive, send)

    async def _without_credentials(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.anonymous is not None:
            try:
                allowed, receive = await self.anonymous(scope, receive)
            except OAuthError as error:
                await self._reject(send, error)
                return
            if allowed:
                await self.app(scope, receive, send)
                return
        await self._reject(send, None)

    def _exempt(self, scope: Scope) -> bool:
        if scope["path"] in self.exempt_paths:
            return True
        # A CORS preflight never carries credentials (Fetch standard, CORS-preflight request).
        if scope["method"] != "OPTIONS":
            return False
        return any(k == b"access-control-request-method" for k, _ in scope["headers"])

    async def _authenticate(self, scope: Scope, used: list[str] | None = None) -> Principal:
        scheme, token = _credentials(scope, dpop=self.dpop is not None)
        if used is not None:
            used.append(scheme)
        principal = await self.verifier.verify(token)
        if scheme == "dpop":
            assert self.dpop is not None  # _credentials only answers dpop when it is on
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"dpop"]
            await self.dpop.check(
                principal,
                token,
                values,
                method=scope["method"],
                url=self.dpop.request_url(scope),
                now=self.dpop.clock(),
            )
        elif bound_jkt(principal) is not None:
            # RFC 9449 §7.2: a DPoP-bound token is not a bearer token; without the key's
            # proof it is worth nothing, whoever holds it.
            raise InvalidTokenError(
                "The access token is DPoP-bound: send it with the DPoP scheme and a proof.",
                detail="cnf.jkt token presented as Bearer",
            )
        return principal

    async def _reject(
        self, send: Send, error: OAuthError | None, *, dpop_used: bool = False
    ) -> None:
        status = 401 if error is None else error.status_code
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
        ]
        if _challenged(error):
            challenges = self._challenges(error, dpop_used=dpop_used)
            headers.extend((b"www-authenticate", c.encode("latin-1")) for c in challenges)
        if error is not None:
            headers.extend((k.lower().encode(), v.encode()) for k, v in error.headers().items())
            log.info("bearer.rejected", extra={"error": error.error, "detail": error.detail})
        if isinstance(error, TemporarilyUnavailableError):
            log.warning("bearer.verifier_unavailable", extra={"detail": error.detail})
        body = json.dumps(
            {"error": "invalid_token", "error_description": "An access token is required."}
            if error is None
            else error.to_dict(),
            separators=(",", ":"),
        ).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _challenges(self, error: OAuthError | None, *, dpop_used: bool) -> list[str]:
        """``Bearer`` and, with DPoP on, ``DPoP`` (RFC 9449 §7.1); the error goes in the
        challenge of the scheme the request used, the other one stays bare."""
        metadata, scopes = self.resource_metadata_url, self.challenge_scopes
        bearer_error = None if dpop_used else error
        if isinstance(bearer_error, InvalidDpopProofError | UseDpopNonceError):
            bearer_error = None
        bearer = challenge_for_error(bearer_error, resource_metadata=metadata, scopes=scopes)
        if self.dpop is None or not (self.dpop.advertise or dpop_used):
            return [challenge_for_error(error, resource_metadata=metadata, scopes=scopes)]
        dpop_error = error if dpop_used else None
        needed = scopes
        if isinstance(dpop_error, InsufficientScopeError) and dpop_error.required_scopes:
            needed = dpop_error.required_scopes
        dpop = build_dpop_challenge(
            algs=self.dpop.algorithms,
            resource_metadata=metadata,
            scopes=needed,
            error=None if dpop_error is None else dpop_error.error,
            error_description=None if dpop_error is None else dpop_error.description,
        )
        return [bearer, dpop]
