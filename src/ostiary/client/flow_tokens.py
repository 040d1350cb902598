"""The flow's token steps: register, grant, refresh (RFC 6749 §4, §6; RFC 7591 §3; RFC 9449 §8).

Mixed into :class:`ostiary.client.flow.OAuthFlow`. These steps obtain a client identity
(pre-registered, CIMD or RFC 7591 dynamic registration), pick the scopes to ask for (MCP
"Scope Selection Strategy"), run the configured grant (code + PKCE, client credentials or
RFC 7523 jwt-bearer) or a refresh, attach a DPoP proof to token requests when the AS offers
it, and save the tokens they get. The requests themselves are built by the sans-IO
:mod:`ostiary.client.tokens`, :mod:`ostiary.client.registration` and
:mod:`ostiary.client.authorization`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.authorization import start_authorization, validate_callback
from ostiary.client.dpop import DPOP_ALGORITHM, DPoPSigner
from ostiary.client.registration import (
    ClientConfig,
    ClientRegistration,
    build_registration_request,
    choose_registration,
    parse_registration_response,
    static_registration,
)
from ostiary.client.tokens import (
    TokenSet,
    authorization_code_request,
    client_credentials_request,
    jwt_bearer_request,
    parse_token_response,
    refresh_request,
)
from ostiary.errors import AuthorizationFlowError

if TYPE_CHECKING:
    from ostiary.client.authorization import AuthorizationCallback
    from ostiary.client.challenges import BearerChallenge
    from ostiary.client.flow_types import AssertionProvider, Grant, ServerContext, Step
    from ostiary.client.token_store import TokenStore

__all__ = ["OFFLINE_ACCESS", "TokenSteps"]

OFFLINE_ACCESS = "offline_access"


class TokenSteps:
    """Token steps of :class:`~ostiary.client.flow.OAuthFlow`; state set by its ``__init__``."""

    client: ClientConfig
    callback: AuthorizationCallback | None
    store: TokenStore
    grant: Grant
    assertion_provider: AssertionProvider | None
    tokens: TokenSet | None
    registration: ClientRegistration | None
    requested_scopes: tuple[str, ...]
    authorizations: int
    dpop: DPoPSigner
    _as_nonce: str | None
    _token_response: HttpResponse | None

    @property
    def _signing(self) -> tuple[str, str] | None:
        pem = self.client.private_key_pem
        return (pem, self.client.signing_algorithm) if pem else None

    async def _refresh(self, context: ServerContext, refresh_token: str) -> Step:
        registration = await self._registration(context)
        if registration is None:
            raise AuthorizationFlowError("no client registration to refresh with")
        yield self._token_call(
            context,
            refresh_request(
                refresh_token=refresh_token,
                resource=context.resource,
                registration=registration,
                metadata=context.metadata,
                signing=self._signing,
            ),
        )
        response = self._take_token_response()
        try:
            tokens = parse_token_response(
                response,
                requested_scope=self.tokens.scope if self.tokens else None,
                previous_refresh_token=refresh_token,
            )
        except AuthorizationFlowError:
            self.tokens = None
            await self.store.delete_tokens(context.issuer, context.resource)
            raise
        await self._save_tokens(context, tokens)

    async def _save_tokens(self, context: ServerContext, tokens: TokenSet) -> None:
        if tokens.token_type == "DPoP":
            # RFC 9449 §5: the tokens are bound to this key; keep it with them so a
            # later run can still present them.
            tokens = tokens.model_copy(update={"dpop_key": self.dpop.private_jwk()})
        self.tokens = tokens
        await self.store.save_tokens(context.issuer, context.resource, tokens)

    def _scope_for(self, context: ServerContext, challenge: BearerChallenge | None) -> str | None:
        """MCP "Scope Selection Strategy": challenge → PRM scopes_supported → configured → omit."""
        if challenge is not None and challenge.scopes:
            self.requested_scopes = tuple(
                dict.fromkeys((*self.requested_scopes, *challenge.scopes))
            )
        if not self.requested_scopes:
            if context.prm.scopes_supported:
                self.requested_scopes = tuple(context.prm.scopes_supported)
            elif self.client.scope:
                self.requested_scopes = tuple(self.client.scope.split())
        scopes = list(self.requested_scopes)
        offered = context.metadata.scopes_supported or []
        wants_refresh = "refresh_token" in self.client.grant_types
        if (
            self.grant == "authorization_code"
            and wants_refresh
            and OFFLINE_ACCESS in offered
            and OFFLINE_ACCESS not in scopes
        ):
            scopes.append(OFFLINE_ACCESS)  # MCP "Refresh Tokens": MAY ask when offered
        return " ".join(scopes) or None

    # ------------------------------------------------------------------ registration
    async def _registration(self, context: ServerContext) -> ClientRegistration | None:
        if self.registration is not None and self.registration.issuer == context.issuer:
            return self.registration
        strategy = choose_registration(self.client, context.metadata)
        if strategy != "dynamic":
            self.registration = static_registration(self.client, context.metadata, strategy)
            # Kept for reference only (logout revokes with it); never read back for use.
            await self.store.save_registration(context.resource, self.registration)
            return self.registration
        stored = await self.store.get_registration(context.issuer, context.resource)
        usable = stored is not None and stored.strategy == "dynamic" and not stored.is_expired()
        if stored is not None and usable and stored.issuer == context.issuer:
            self.registration = stored
            return stored
        return None

    async def _register(self, context: ServerContext) -> Step:
        if await self._registration(context) is not None:
            return
        endpoint = context.metadata.registration_endpoint
        assert endpoint is not None  # choose_registration only says "dynamic" when present
        response = yield HttpRequest.post_json(
            endpoint, build_registration_request(self.client, context.metadata)
        )
        registration = parse_registration_response(
            response.status_code, response.json(), context.metadata, self.client
        )
        self.registration = registration
        await self.store.save_registration(context.resource, registration)

    # ------------------------------------------------------------------ authorization
    async def _authorize(self, context: ServerContext, challenge: BearerChallenge | None) -> Step:
        yield self._register(context)
        registration = self.registration
        assert registration is not None
        scope = self._scope_for(context, challenge)
        self.authorizations += 1
        yield self._token_call(context, await self._grant_request(context, registration, scope))
        response = self._take_token_response()
        try:
            tokens = parse_token_response(response, requested_scope=scope)
        except AuthorizationFlowError as exc:
            if exc.error == "invalid_client" and registration.strategy == "dynamic":
                # The AS forgot us (or the secret expired): register afresh next time.
                self.registration = None
                await self.store.delete_registration(context.issuer, context.resource)
            raise
        await self._save_tokens(context, tokens)

    def _uses_dpop(self, context: ServerContext) -> bool:
        offered = context.metadata.dpop_signing_alg_values_supported or []
        return self.client.use_dpop and DPOP_ALGORITHM in offered

    def _with_proof(self, context: ServerContext, request: HttpRequest) -> HttpRequest:
        if not self._uses_dpop(context):
            return request
        proof = self.dpop.proof(request.method, request.url, nonce=self._as_nonce)
        return replace(request, headers={**request.headers, "DPoP": proof})

    async def _token_call(self, context: ServerContext, request: HttpRequest) -> Step:
        """POST to the token endpoint, answering one ``use_dpop_nonce`` demand (RFC 9449 §8)."""
        response = yield self._with_proof(context, request)
        nonce = response.headers.get("dpop-nonce")
        if nonce is not None and self._uses_dpop(context):
            retry = response.status_code == 400 and nonce != self._as_nonce
            self._as_nonce = nonce
            body = response.json()
            if retry and isinstance(body, dict) and body.get("error") == "use_dpop_nonce":
                response = yield self._with_proof(context, request)
        self._token_response = response

    def _take_token_response(self) -> HttpResponse:
        response, self._token_response = self._token_response, None
        assert response is not None
        return response

    async def _grant_request(
        self, context: ServerContext, registration: ClientRegistration, scope: str | None
    ) -> HttpRequest:
        if self.grant == "authorization_code":
            return await self._code_exchange(context, registration, scope)
        if self.grant == "client_credentials":
            return client_credentials_request(
                resource=context.resource,
                scope=scope,
                registration=registration,
                metadata=context.metadata,
                signing=self._signing,
            )
        if self.assertion_provider is None:
            raise AuthorizationFlowError("the jwt-bearer grant needs an assertion provider")
        # RFC 7523 §2.1: one attempt; an error is surfaced, never retried with another grant.
        return jwt_bearer_request(
            assertion=await self.assertion_provider(context),
            resource=context.resource,
            scope=scope,
            registration=registration,
            metadata=context.metadata,
            signing=self._signing,
        )

    async def _code_exchange(
        self, context: ServerContext, registration: ClientRegistration, scope: str | None
    ) -> HttpRequest:
        if self.callback is None:
            raise AuthorizationFlowError(
                "authorization is required but no interactive callback is configured"
            )
        redirect_uri = self.client.redirect_uris[0]
        pending = start_authorization(
            metadata=context.metadata,
            client_id=registration.client_id,
            redirect_uri=redirect_uri,
            resource=context.resource,
            scope=scope,
            # RFC 9449 §10: the code is bound to the key the token request will prove.
            dpop_jkt=self.dpop.thumbprint() if self._uses_dpop(context) else None,
        )
        result = await self.callback(pending.authorization_url)
        code = validate_callback(pending, result)
        return authorization_code_request(
            code=code,
            code_verifier=pending.code_verifier,
            redirect_uri=redirect_uri,
            resource=context.resource,
            registration=registration,
            metadata=context.metadata,
            signing=self._signing,
        )
