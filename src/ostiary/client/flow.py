"""The MCP client authorization flow, transport-neutral (MCP authorization 2026-07-28).

:class:`OAuthFlow` is the state machine behind :class:`ostiary.client.auth.OAuthClientAuth`:
send the request with the current token; on ``401`` discover (PRM, then AS metadata),
obtain a client identity, then refresh or authorize (code + PKCE, or client credentials)
and retry once; on ``403 insufficient_scope`` step up with the union of the scopes asked so
far and the challenged ones, at most :data:`MAX_STEP_UP_ATTEMPTS` times; refresh before
expiry. It is an async generator over :class:`~ostiary.client._http.HttpRequest` /
:class:`~ostiary.client._http.HttpResponse`, so any HTTP client can drive it.

Async generators cannot ``yield from`` or return values, so each step is a generator that
leaves its result on the flow object and yields its sub-steps to :func:`drive`.

This module holds the driver, the records and the decisions that tie the steps together
(retry, recover, step up). The steps themselves are mixed in by concern: metadata fetching
from :mod:`ostiary.client.flow_discovery`, registration and token requests from
:mod:`ostiary.client.flow_tokens`; the records and the step type all three use are in
:mod:`ostiary.client.flow_types`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import anyio

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.authorization import AuthorizationCallback
from ostiary.client.challenges import BearerChallenge, parse_bearer_challenge, parse_challenges
from ostiary.client.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    canonical_resource,
    require_pkce_s256,
    require_secure_urls,
)
from ostiary.client.dpop import DPoPSigner
from ostiary.client.flow_discovery import DiscoverySteps
from ostiary.client.flow_tokens import TokenSteps
from ostiary.client.flow_types import (
    AssertionProvider,
    Flow,
    Grant,
    OriginalRequest,
    ServerContext,
    Step,
)
from ostiary.client.registration import ClientConfig, ClientRegistration
from ostiary.client.token_store import MemoryTokenStore, TokenStore
from ostiary.client.tokens import TokenSet
from ostiary.errors import AuthorizationFlowError

__all__ = [
    "MAX_STEP_UP_ATTEMPTS",
    "AssertionProvider",
    "Grant",
    "OAuthFlow",
    "OriginalRequest",
    "ServerContext",
]

#: MCP "Step-Up Authorization Flow": retry no more than a few times. Counts every
#: authorization made while handling one request, the first one included.
MAX_STEP_UP_ATTEMPTS = 3


async def drive(root: Step) -> Flow:
    """Run a step and the sub-steps it yields, yielding only the requests to send.

    Async generators cannot ``yield from``, so steps yield their sub-steps and this
    trampoline runs them: a finished sub-step resumes its parent, and an exception in a
    sub-step is thrown into its parent at the ``yield``, where it can be handled.
    """
    stack: list[Step] = [root]
    value: HttpResponse | None = None
    error: Exception | None = None
    while stack:
        top = stack[-1]
        try:
            if error is not None:
                item = await top.athrow(error)
            else:
                item = await top.asend(value)  # type: ignore[arg-type]
        except StopAsyncIteration:
            stack.pop()
            value, error = None, None
            continue
        except Exception as exc:
            stack.pop()
            if not stack:
                raise
            value, error = None, exc
            continue
        value, error = None, None
        if isinstance(item, HttpRequest | OriginalRequest):
            value = yield item
        else:
            stack.append(item)


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _is_insufficient_scope(response: HttpResponse) -> BearerChallenge | None:
    if response.status_code != 403:
        return None
    challenge = parse_bearer_challenge(response.www_authenticate)
    if challenge is None or challenge.error != "insufficient_scope":
        return None
    return challenge


class OAuthFlow(DiscoverySteps, TokenSteps):
    """Shared, transport-neutral state of one client's authorization with one MCP server.

    Args:
        client: What the client knows about itself (names, redirect URIs, credentials).
        callback: Sends the user to the authorization URL and returns the redirect's
            parameters; required for the ``authorization_code`` grant.
        store: Where tokens and registrations live; memory by default.
        server_url: The MCP server URL; defaults to the URL of the first request.
        grant: ``authorization_code`` (users), ``client_credentials`` (machines) or
            ``jwt_bearer`` (RFC 7523 assertion: workload identity, enterprise ID-JAG).
        assertion_provider: Returns the assertion for the ``jwt_bearer`` grant.
        max_step_up_attempts: Step-up authorizations allowed before giving up.
    """

    def __init__(
        self,
        client: ClientConfig | None = None,
        *,
        callback: AuthorizationCallback | None = None,
        store: TokenStore | None = None,
        server_url: str | None = None,
        grant: Grant = "authorization_code",
        max_step_up_attempts: int = MAX_STEP_UP_ATTEMPTS,
        assertion_provider: AssertionProvider | None = None,
    ) -> None:
        self.assertion_provider = assertion_provider
        self.client = client or ClientConfig()
        self.callback = callback
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.server_url = server_url
        self.grant: Grant = grant
        self.max_step_up_attempts = max_step_up_attempts
        self.context: ServerContext | None = None
        self.tokens: TokenSet | None = None
        self.registration: ClientRegistration | None = None
        self.requested_scopes: tuple[str, ...] = ()
        #: Authorizations (code or client credentials grants) made so far.
        self.authorizations = 0
        self._lock = anyio.Lock()
        self.dpop = DPoPSigner()
        self._rs_nonce: str | None = None
        self._as_nonce: str | None = None
        self._token_response: HttpResponse | None = None
        self._prm: ProtectedResourceMetadata | None = None
        self._metadata: AuthorizationServerMetadata | None = None

    # ------------------------------------------------------------------ public driver
    def _credentials(self, method: str, url: str) -> OriginalRequest:
        """RFC 6750 §2.1 ``Bearer``, or RFC 9449 §7.1 ``DPoP`` with a fresh proof."""
        tokens = self.tokens
        if tokens is None:
            return OriginalRequest({"Authorization": None, "DPoP": None})
        if tokens.token_type == "DPoP":
            proof = self.dpop.proof(
                method, url, access_token=tokens.access_token, nonce=self._rs_nonce
            )
            return OriginalRequest({"Authorization": f"DPoP {tokens.access_token}", "DPoP": proof})
        return OriginalRequest({"Authorization": f"Bearer {tokens.access_token}", "DPoP": None})

    def _wants_rs_nonce(self, response: HttpResponse) -> bool:
        """Remember a resource server nonce; True when it demanded one (RFC 9449 §9)."""
        nonce = response.headers.get("dpop-nonce")
        if nonce is None:
            return False
        demanded = nonce != self._rs_nonce and response.status_code == 401
        self._rs_nonce = nonce
        # The error sits in the DPoP challenge, which may follow a bare Bearer one (§7.1).
        errors = {c.params.get("error") for c in parse_challenges(response.www_authenticate)}
        return demanded and "use_dpop_nonce" in errors

    def handle(self, url: str, method: str = "POST") -> Flow:
        """Authenticate one request; yields what to send, receives what came back."""
        return drive(self._handle(method, url))

    async def _handle(self, method: str, url: str) -> Step:
        server_url = self.server_url or _strip_query(url)
        started = self.authorizations
        async with self._lock:
            if self.context and self.tokens and self.tokens.is_expiring():
                yield self._refresh_or_authorize()
        sent = self.tokens
        response = yield self._credentials(method, url)
        # Up to three 401 rounds: a DPoP nonce demand is answered at once; tokens loaded
        # from the store are tried as they are first and, when refused, refreshed or
        # replaced.
        for _ in range(3):
            if response.status_code != 401:
                break
            if self._wants_rs_nonce(response):
                response = yield self._credentials(method, url)
                continue
            async with self._lock:
                if self.tokens is sent or self.tokens is None:
                    challenge = parse_bearer_challenge(response.www_authenticate)
                    yield self._recover(server_url, challenge, sent)
            sent = self.tokens
            response = yield self._credentials(method, url)
        while (challenge := _is_insufficient_scope(response)) is not None:
            if self.authorizations - started >= self.max_step_up_attempts or not self.context:
                return  # give up: the caller sees the 403
            async with self._lock:
                yield self._step_up(challenge)
            response = yield self._credentials(method, url)

    # ------------------------------------------------------------------ discovery
    async def _discover(self, server_url: str, challenge: BearerChallenge | None) -> Step:
        yield self._discover_prm(server_url, challenge)
        if self._prm is None:
            yield self._discover_legacy(server_url)
            assert self._prm is not None
        prm = self._prm
        issuer = prm.authorization_servers[0]
        if self._metadata is not None and self._metadata.issuer == issuer:
            metadata = self._metadata
        elif self.context is not None and self.context.issuer == issuer:
            metadata = self.context.metadata
        else:
            yield self._discover_as(issuer)
            assert self._metadata is not None
            metadata = self._metadata
        if not self.client.allow_insecure_http:
            endpoints = [
                issuer,
                metadata.authorization_endpoint,
                metadata.token_endpoint,
                metadata.registration_endpoint,
            ]
            require_secure_urls(endpoints, "authorization server")
        if self.grant == "authorization_code":
            require_pkce_s256(metadata)
        if self.context is not None and self.context.issuer != metadata.issuer:
            # SEP-2352: the server moved to another AS; nothing from the old one is reused.
            self.tokens = None
            self.registration = None
            self.requested_scopes = ()
        self.context = ServerContext(
            server_url=server_url,
            resource=canonical_resource(prm.resource),
            prm=prm,
            metadata=metadata,
        )

    # ------------------------------------------------------------------ recovery
    async def _recover(
        self, server_url: str, challenge: BearerChallenge | None, sent: TokenSet | None
    ) -> Step:
        yield self._discover(server_url, challenge)
        context = self.context
        assert context is not None
        if challenge is not None and challenge.scopes and not self.requested_scopes:
            self.requested_scopes = challenge.scopes
        stored = await self.store.get_tokens(context.issuer, context.resource)
        if stored is not None and stored.dpop_key is not None:
            self.dpop = DPoPSigner.from_jwk(stored.dpop_key)
        if stored is not None and sent is None and not stored.is_expiring():
            self.tokens = stored  # saved by an earlier run: try it first
            return
        self.tokens = stored
        yield self._refresh_or_authorize(challenge)

    async def _refresh_or_authorize(self, challenge: BearerChallenge | None = None) -> Step:
        context = self.context
        assert context is not None
        tokens = self.tokens
        if tokens is not None and tokens.refresh_token:
            try:
                yield self._refresh(context, tokens.refresh_token)
            except AuthorizationFlowError:
                pass  # invalid_grant and friends: the user logs in again
            else:
                return
        yield self._authorize(context, challenge)

    async def _step_up(self, challenge: BearerChallenge) -> Step:
        context = self.context
        assert context is not None
        # SEP-2350: ask for the union of what was asked before and what is challenged now.
        self.requested_scopes = tuple(dict.fromkeys((*self.requested_scopes, *challenge.scopes)))
        yield self._authorize(context, None)
