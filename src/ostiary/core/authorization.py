"""The authorization endpoint's request validation and code issuance (OAuth 2.1 §4.1.1-§4.1.2).

Validation runs in two phases. Until the client and its redirect URI are trusted, an error is
shown to the user and never redirected (OAuth 2.1 §4.1.2.1, RFC 9700 §4.11); afterwards errors
go back to the client with ``state`` and ``iss`` (RFC 9207). Codes carry the PKCE challenge,
scopes and RFC 8707 resource into the grant, and an RFC 9449 §10 ``dpop_jkt`` into the code.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ostiary.core import pkce
from ostiary.core.clients import load_client, registered_scope_is_ceiling
from ostiary.core.context import ServerContext
from ostiary.core.models import AuthorizationCode, Client, Consent, Grant
from ostiary.core.prompt import parse_prompt
from ostiary.core.redirect_uris import is_loopback_redirect, match_redirect_uri
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resources
from ostiary.core.scopes import parse_scope, resolve_requested_scopes
from ostiary.core.secrets import hash_secret, new_secret
from ostiary.errors import (
    InvalidClientMetadataError,
    InvalidRequestError,
    OAuthError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)

#: RFC 7638 SHA-256 thumbprint, base64url without padding (RFC 9449 §10).
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class UntrustedRequestError(OAuthError):
    """An authorization error that must be shown to the user, not redirected."""

    error = "invalid_request"
    redirectable = False


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """Where errors and codes may go once phase one passed."""

    redirect_uri: str
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A fully validated authorization request, stored in the interaction until consent."""

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    state: str | None
    scopes: tuple[str, ...]
    code_challenge: str
    resource: str | None
    #: OpenID Connect ``prompt`` values (``none``, ``login``, ``consent``, ``select_account``).
    prompt: tuple[str, ...] = ()
    #: RFC 9449 §10 ``dpop_jkt``: the code is redeemed only with a proof of this key.
    dpop_jkt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        data["prompt"] = list(self.prompt)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(
            **{**data, "scopes": tuple(data["scopes"]), "prompt": tuple(data.get("prompt", ()))}
        )

    @property
    def silent(self) -> bool:
        """``prompt=none``: no page may be shown."""
        return "none" in self.prompt

    @property
    def forces_login(self) -> bool:
        """``prompt=login`` or ``select_account``: an existing session does not count."""
        return "login" in self.prompt or "select_account" in self.prompt

    @property
    def forces_consent(self) -> bool:
        """``prompt=consent``: ask even when a remembered consent covers the request."""
        return "consent" in self.prompt


async def validate_client_and_redirect(
    ctx: ServerContext, params: Params
) -> tuple[Client, RedirectTarget]:
    """Phase one: the client exists and the redirect URI is registered for it."""
    client_id = params.get("client_id")
    if client_id is None:
        raise UntrustedRequestError("client_id is required")
    try:
        client = await load_client(ctx, client_id)
    except InvalidClientMetadataError as exc:
        raise UntrustedRequestError(exc.description, detail=exc.detail) from None
    if client is None:
        raise UntrustedRequestError("unknown client_id")
    requested = params.get("redirect_uri")
    if requested is None:
        # OAuth 2.1 §4.1.1: optional only when exactly one non-loopback URI is registered.
        only = client.redirect_uris[0] if len(client.redirect_uris) == 1 else None
        if only is None or is_loopback_redirect(only):
            raise UntrustedRequestError("redirect_uri is required")
        return client, RedirectTarget(only, params.get("state"))
    if not match_redirect_uri(requested, client.redirect_uris):
        raise UntrustedRequestError("redirect_uri is not registered for this client")
    return client, RedirectTarget(requested, params.get("state"))


def validate_authorization_request(
    ctx: ServerContext, client: Client, target: RedirectTarget, params: Params
) -> AuthorizationRequest:
    """Phase two: every other parameter. Errors here may redirect to ``target``."""
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequestError("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseTypeError("only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClientError("client is not registered for the authorization_code grant")
    settings = ctx.settings
    scopes = resolve_requested_scopes(
        parse_scope(params.get("scope")),
        client_scope=client.scope,
        registered_scope_is_ceiling=registered_scope_is_ceiling(client),
        supported=settings.scopes.supported,
        default=settings.scopes.default,
    )
    challenge = pkce.validate_code_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    resource = validate_resources(params.all("resource"), allowed=settings.allowed_resources)
    prompt = parse_prompt(params.get("prompt"))
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and _JKT.fullmatch(dpop_jkt) is None:
        raise InvalidRequestError("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        redirect_uri_given=params.get("redirect_uri") is not None,
        state=target.state,
        scopes=scopes,
        code_challenge=challenge,
        resource=resource or settings.default_resource,
        prompt=prompt,
        dpop_jkt=dpop_jkt,
    )


def build_redirect(ctx: ServerContext, redirect_uri: str, values: dict[str, str | None]) -> str:
    """Append response parameters and ``iss`` (RFC 9207 §2) to the redirect URI's query."""
    parts = urlsplit(redirect_uri)
    extra = [(k, v) for k, v in values.items() if v is not None]
    extra.append(("iss", ctx.issuer))
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def error_redirect(ctx: ServerContext, target: RedirectTarget, error: OAuthError) -> str:
    return build_redirect(
        ctx,
        target.redirect_uri,
        {"error": error.error, "error_description": error.description, "state": target.state},
    )


async def has_consent(ctx: ServerContext, subject: str, request: AuthorizationRequest) -> bool:
    """True when a remembered consent covers these scopes for this client and resource.

    With ``security.remember_consent_for_unverified_clients`` off, a client whose identity
    nothing proves is asked again every time (RFC 8252 §8.6); ``prompt=consent`` asks again.
    """
    security = ctx.settings.security
    if not security.remember_consent or request.forces_consent:
        return False
    if not security.remember_consent_for_unverified_clients and not await _identity_assured(
        ctx, request
    ):
        return False
    consent = await ctx.storage.get_consent(
        ctx.tenant, subject, request.client_id, request.resource
    )
    return consent is not None and set(request.scopes) <= set(consent.scopes)


async def _remember(
    ctx: ServerContext, subject: str, request: AuthorizationRequest, now: int
) -> None:
    """Add the approved scopes to what this user approved for the client and resource."""
    before = await ctx.storage.get_consent(ctx.tenant, subject, request.client_id, request.resource)
    scopes = tuple(dict.fromkeys((*(before.scopes if before else ()), *request.scopes)))
    await ctx.storage.save_consent(
        Consent(ctx.tenant, subject, request.client_id, request.resource, scopes, now)
    )


async def _identity_assured(ctx: ServerContext, request: AuthorizationRequest) -> bool:
    """Whether only the real client can use a code issued for ``request`` (RFC 8252 §8.6).

    True when the code goes to an ``https`` redirect URI (only its owner receives it) or the
    client authenticates at the token endpoint (a copycat cannot redeem the code). Any app on
    a device can claim a public client's id together with a loopback or custom-scheme
    redirect URI.
    """
    if urlsplit(request.redirect_uri).scheme == "https":
        return True
    try:
        client = await load_client(ctx, request.client_id)
    except InvalidClientMetadataError:
        return False
    return client is not None and client.token_endpoint_auth_method != "none"


async def approve(
    ctx: ServerContext, subject: str, request: AuthorizationRequest, *, remembered: bool = False
) -> str:
    """Create the grant and a single-use code; returns the redirect URL.

    A decision the user just made is added to the remembered consent; a request that the
    remembered consent already covered (``remembered``) leaves it as it is, so asking for
    fewer scopes once does not shrink what the user approved before.
    """
    url, _grant = await approve_with_grant(ctx, subject, request, remembered=remembered)
    return url


async def approve_with_grant(
    ctx: ServerContext, subject: str, request: AuthorizationRequest, *, remembered: bool = False
) -> tuple[str, Grant]:
    """:func:`approve`, also returning the grant it created (to attach upstream tokens)."""
    now = ctx.clock()
    settings = ctx.settings
    if not remembered:
        await _remember(ctx, subject, request, now)
    grant = Grant(
        tenant_id=ctx.tenant,
        grant_id=new_secret(16),
        client_id=request.client_id,
        subject=subject,
        scopes=request.scopes,
        resource=request.resource,
        created_at=now,
        expires_at=now + settings.tokens.refresh_token_ttl,
    )
    code = new_secret()
    # The grant and its first code in one transaction.
    await ctx.storage.open_grant(
        grant,
        code=AuthorizationCode(
            tenant_id=ctx.tenant,
            code_hash=hash_secret(code),
            grant_id=grant.grant_id,
            client_id=request.client_id,
            subject=subject,
            redirect_uri=request.redirect_uri if request.redirect_uri_given else "",
            code_challenge=request.code_challenge,
            scopes=request.scopes,
            resource=request.resource,
            expires_at=now + settings.tokens.authorization_code_ttl,
            dpop_jkt=request.dpop_jkt,
        ),
    )
    ctx.audit("authorization.approved", client_id=request.client_id, subject=subject)
    url = build_redirect(ctx, request.redirect_uri, {"code": code, "state": request.state})
    return url, grant


async def deny(ctx: ServerContext, subject: str | None, request: AuthorizationRequest) -> str:
    """The access_denied redirect (RFC 6749 §4.1.2.1) with ``iss``."""
    ctx.audit("authorization.denied", client_id=request.client_id, subject=subject)
    return build_redirect(
        ctx,
        request.redirect_uri,
        {
            "error": "access_denied",
            "error_description": "The user denied the request.",
            "state": request.state,
        },
    )
