"""The ID-JAG grant: an enterprise identity assertion for an access token (RFC 7523 §2.1; SEP-990).

``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an ``assertion`` whose
``typ`` is ``oauth-id-jag+jwt`` (draft-ietf-oauth-identity-assertion-authz-grant), signed
by one of ``enterprise.trusted_issuers``. Only a confidential client registered for the
grant may use it, and only with an ID-JAG naming its own ``client_id``. Each ID-JAG is spent
once (its ``jti`` goes to the storage's replay cache, shared by every node). The subject is
linked to a local user (or one is created when the issuer allows it). No refresh token is
issued: the client asks the identity provider for a new ID-JAG instead, so the enterprise's
policy is applied again on every renewal.
"""

from __future__ import annotations

import re
from typing import Final

from ostiary.core.clients import is_confidential
from ostiary.core.context import ServerContext
from ostiary.core.id_jag import IdJag, verify_id_jag
from ostiary.core.issuance import OFFLINE_ACCESS, mint_access_token_for
from ostiary.core.metadata import JWT_BEARER_GRANT_TYPE
from ostiary.core.models import Client, Grant, LinkedIdentity, User
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resource_for_grant, validate_resources
from ostiary.core.scopes import parse_scope
from ostiary.core.secrets import new_secret
from ostiary.core.tokens import TokenResponse, token_type
from ostiary.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    StorageError,
    UnauthorizedClientError,
)

GRANT_TYPE: Final = JWT_BEARER_GRANT_TYPE
PARAMETERS: Final = frozenset({"assertion", "scope", "resource"})
#: The password hash of a user who signs in only through an identity provider (never verifies).
NO_PASSWORD: Final = "!federated"
_USERNAME_CHARS: Final = re.compile(r"[^A-Za-z0-9._@+-]")


def is_enabled(ctx: ServerContext) -> bool:
    """The grant is offered only when an enterprise identity provider is trusted."""
    return bool(ctx.settings.enterprise.trusted_issuers)


async def handle(
    ctx: ServerContext, client: Client, params: Params, jkt: str | None = None
) -> TokenResponse:
    if not is_confidential(client):
        raise UnauthorizedClientError("the jwt-bearer grant needs a confidential client")
    assertion = params.get("assertion")
    if not assertion:
        raise InvalidRequestError("assertion is required")
    try:
        jag = await _verified(ctx, client, assertion)
        resource = _resource(ctx, jag, params)
        scopes = _scopes(ctx, jag, params)
        subject = await _local_subject(ctx, jag)
    except OAuthError as exc:
        ctx.audit(
            "id_jag.refused",
            client_id=client.client_id,
            code=exc.error,
            reason=exc.description,
            detail=exc.detail,
        )
        raise
    now = ctx.clock()
    settings = ctx.settings
    grant = Grant(
        tenant_id=ctx.tenant,
        grant_id=new_secret(16),
        client_id=client.client_id,
        subject=subject,
        scopes=scopes,
        resource=resource,
        created_at=now,
        expires_at=now + settings.tokens.access_token_ttl,
    )
    access_token, expires_in, record = await mint_access_token_for(ctx, grant, scopes, jkt=jkt)
    await ctx.storage.open_grant(grant, access_token=record)  # one transaction
    ctx.audit(
        "token.issued",
        grant_type=GRANT_TYPE,
        client_id=client.client_id,
        subject=subject,
        grant=grant.grant_id,
        issuer=jag.issuer.name,
        refresh=False,
        dpop=jkt is not None,
    )
    return TokenResponse(access_token, expires_in, scopes, token_type=token_type(jkt))


async def _verified(ctx: ServerContext, client: Client, assertion: str) -> IdJag:
    settings = ctx.settings.enterprise
    now = ctx.clock()
    keys = ctx.issuer_keys
    if keys is None:  # create_authorization_server sets one whenever issuers are configured
        raise InvalidGrantError("the identity provider's keys could not be loaded")

    async def load_keys(jwks_uri: str, refresh: bool) -> dict[str, object]:
        return dict(await keys.load(jwks_uri, now=now, refresh=refresh))

    jag = await verify_id_jag(
        assertion,
        issuers=settings.trusted_issuers,
        audience=ctx.issuer,
        client_id=client.client_id,
        now=now,
        skew=settings.clock_skew_seconds,
        max_lifetime=settings.max_assertion_lifetime,
        load_keys=load_keys,
    )
    # RFC 7523 §3 item 7: single use, across every node sharing the storage.
    key = f"id_jag:{jag.issuer.name}:{jag.jti}"
    expires_at = jag.expires_at + settings.clock_skew_seconds
    if not await ctx.storage.remember_jti(ctx.tenant, key, expires_at, now):
        raise InvalidGrantError("the ID-JAG was already used")
    return jag


def _resource(ctx: ServerContext, jag: IdJag, params: Params) -> str:
    """RFC 8707: the ID-JAG's ``resource`` when it names one, which the request may repeat."""
    allowed = ctx.settings.allowed_resources
    if jag.resources:
        granted = validate_resources(jag.resources, allowed=allowed)
        chosen = validate_resource_for_grant(params.all("resource"), granted)
    else:
        chosen = validate_resources(params.all("resource"), allowed=allowed)
    return chosen or ctx.settings.default_resource


def _scopes(ctx: ServerContext, jag: IdJag, params: Params) -> tuple[str, ...]:
    """The requested scopes, each supported here and, when the ID-JAG has ``scope``, in it."""
    settings = ctx.settings
    supported = [s for s in settings.scopes.supported if s != OFFLINE_ACCESS]
    ceiling = parse_scope(jag.scope) if jag.scope is not None else None
    requested = parse_scope(params.get("scope"))
    if not requested:
        if ceiling is not None:
            return tuple(s for s in ceiling if s in supported)
        return tuple(s for s in dict.fromkeys(settings.scopes.default) if s in supported)
    unsupported = [s for s in requested if s not in supported]
    if unsupported:
        raise InvalidScopeError(f"unsupported scope: {' '.join(unsupported)[:200]}")
    if ceiling is not None:
        outside = [s for s in requested if s not in ceiling]
        if outside:
            raise InvalidScopeError(f"scope not granted by the ID-JAG: {' '.join(outside)[:200]}")
    return requested


async def _local_subject(ctx: ServerContext, jag: IdJag) -> str:
    """The local user the ID-JAG's subject is linked to, linking or creating one if allowed."""
    trusted = jag.issuer
    value = jag.subject if trusted.subject_claim == "sub" else jag.claims.get("email")
    if not isinstance(value, str) or not value:
        raise InvalidGrantError(f"the ID-JAG must carry a {trusted.subject_claim} claim")
    provider = f"id-jag:{trusted.name}"
    linked = await ctx.storage.get_linked_identity(ctx.tenant, provider, value)
    user = await ctx.storage.get_user(ctx.tenant, linked.subject) if linked else None
    if user is None and trusted.match_username:
        user = await ctx.storage.get_user_by_username(ctx.tenant, value)
    if user is None and trusted.create_users:
        user = await _new_user(ctx, trusted.name, value)
    if user is None:
        raise InvalidGrantError(
            "the ID-JAG subject has no account on this server", detail=f"{provider} {value!r}"
        )
    if user.disabled:
        raise InvalidGrantError("the ID-JAG subject's account is disabled")
    if linked is None or linked.subject != user.user_id:
        email = jag.claims.get("email")
        await ctx.storage.save_linked_identity(
            LinkedIdentity(
                tenant_id=ctx.tenant,
                provider=provider,
                upstream_subject=value,
                subject=user.user_id,
                created_at=ctx.clock(),
                email=email if isinstance(email, str) else None,
            )
        )
        ctx.audit("id_jag.linked", issuer=trusted.name, subject=user.user_id)
    return user.user_id


async def _new_user(ctx: ServerContext, issuer_name: str, value: str) -> User:
    """A local user without a password, named after the identity provider's account."""
    name = f"{issuer_name}.{_USERNAME_CHARS.sub('_', value)}"[:48]
    for attempt in range(3):
        username = name if attempt == 0 else f"{name}.{new_secret(3)}"
        if await ctx.storage.get_user_by_username(ctx.tenant, username) is not None:
            continue
        user = User(
            tenant_id=ctx.tenant,
            user_id=new_secret(12),
            username=username,
            password_hash=NO_PASSWORD,
            created_at=ctx.clock(),
        )
        try:
            await ctx.storage.save_user(user)
        except StorageError:
            continue
        ctx.audit("id_jag.user_created", issuer=issuer_name, subject=user.user_id)
        return user
    raise InvalidGrantError("could not create an account for the ID-JAG subject")
