"""Logging a browser in through an upstream provider (RFC 9700 §4.7, §2.1.1; MCP confused deputy).

:func:`begin` runs only once the user approved the client (or a remembered consent covers
it), immediately before the upstream redirect. It makes a random ``state`` and ``nonce`` and
stores a short-lived, single-use record keyed by the state's *hash*: the interaction it
continues, the provider, the hash of this browser's binding cookie and the hash of the
nonce. The PKCE verifier is never stored: it is an HMAC of the state under the browser
cookie, so only the browser that started the login can finish it and nothing at rest can be
replayed.

:func:`complete` is the callback: the record is found by the hash of ``state`` and deleted
atomically (a second use finds nothing), must belong to this browser and this provider; then
the code is redeemed, the identity validated (ID token for OpenID providers) and linked to a
local subject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ostiary.core import authorization as authz
from ostiary.core.context import ServerContext
from ostiary.core.models import (
    BrowserSession,
    Interaction,
    LinkedIdentity,
    UpstreamToken,
    User,
)
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal
from ostiary.errors import AccessDeniedError, InvalidRequestError, StorageError
from ostiary.federation.cipher import token_context
from ostiary.federation.http import UpstreamError
from ostiary.federation.providers import Provider, UpstreamIdentity, UpstreamTokens
from ostiary.federation.service import Federation, callback_url

#: RFC 9700 §4.7 / MCP security best practices: the upstream state lives about ten minutes.
STATE_TTL_SECONDS = 600
#: How long a browser remembers which local subject last signed in through a provider.
HINT_TTL_SECONDS = 30 * 86400
_STATE_RECORD = "federation-state."
_HINT_RECORD = "federation-hint|"
_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9._@+-]")
#: A password hash no password verifies against: federated users have no local password.
NO_PASSWORD = "!federated"


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What a valid callback continues."""

    interaction_id: str
    provider: str
    #: Set when a remembered consent of this subject let the login skip the consent page.
    remembered_subject: str | None


@dataclass(frozen=True, slots=True)
class CompletedLogin:
    pending: PendingLogin
    subject: str
    identity: UpstreamIdentity
    tokens: UpstreamTokens


def pkce_verifier(browser: str, state: str) -> str:
    """RFC 7636 §4.1 verifier derived from the browser cookie and the state (43 chars)."""
    digest = hmac.new(browser.encode(), f"pkce|{state}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 S256 challenge."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def begin(
    ctx: ServerContext,
    provider: Provider,
    *,
    interaction_id: str,
    browser: str,
    remembered_subject: str | None,
) -> str:
    """Store the single-use login record and return the upstream authorization URL."""
    state, nonce = new_secret(), new_secret()
    now = ctx.clock()
    await ctx.storage.save_interaction(
        Interaction(
            ctx.tenant,
            _STATE_RECORD + hash_secret(state),
            {
                "interaction_id": interaction_id,
                "provider": provider.name,
                "browser": hash_secret(browser),
                "nonce": hash_secret(nonce),
                "remembered_subject": remembered_subject,
            },
            now + STATE_TTL_SECONDS,
        )
    )
    ctx.audit("federation.started", provider=provider.name)
    return await provider.authorization_url(
        redirect_uri=callback_url(ctx, provider.name),
        state=state,
        nonce=nonce,
        code_challenge=pkce_challenge(pkce_verifier(browser, state)),
    )


async def take_pending(
    ctx: ServerContext, provider_name: str, browser: str | None, state: str | None
) -> tuple[PendingLogin, str]:
    """Consume the login record named by ``state``; returns it and the nonce hash.

    Raises:
        InvalidRequestError: No state, unknown/expired/used state, or another browser's.
    """
    if not state or len(state) > 256:
        raise InvalidRequestError("The sign-in response has no valid state.")
    record_id = _STATE_RECORD + hash_secret(state)
    found = await ctx.storage.get_interaction(ctx.tenant, record_id, ctx.clock())
    if found is None:
        ctx.audit("federation.state_rejected", provider=provider_name, reason="unknown")
        raise InvalidRequestError("This sign-in response expired or was already used.")
    params = found.params
    if browser is None or not secrets_equal(hash_secret(browser), str(params["browser"])):
        ctx.audit("federation.state_rejected", provider=provider_name, reason="browser")
        raise InvalidRequestError("This sign-in response belongs to another browser.")
    if params["provider"] != provider_name:
        raise InvalidRequestError("This sign-in response came back to the wrong provider.")
    # Single use: exactly one concurrent caller deletes it.
    if not await ctx.storage.delete_interaction(ctx.tenant, record_id):
        raise InvalidRequestError("This sign-in response expired or was already used.")
    remembered = params.get("remembered_subject")
    pending = PendingLogin(
        interaction_id=str(params["interaction_id"]),
        provider=provider_name,
        remembered_subject=remembered if isinstance(remembered, str) else None,
    )
    return pending, str(params["nonce"])


async def complete(
    ctx: ServerContext,
    provider: Provider,
    *,
    browser: str | None,
    query: Mapping[str, str],
) -> CompletedLogin:
    """Validate the callback, redeem the code, validate the identity and link it.

    Raises:
        InvalidRequestError: The state is missing, unknown, used, expired or not this
            browser's.
        AccessDeniedError: The provider refused, or what it returned did not validate.
    """
    pending, nonce_hash = await take_pending(ctx, provider.name, browser, query.get("state"))
    assert browser is not None
    state = query["state"]
    try:
        await provider.check_response_issuer(query.get("iss"))
        if "error" in query:
            raise UpstreamError(f"the provider answered {query['error'][:64]}")
        code = query.get("code")
        if not code:
            raise UpstreamError("the sign-in response has no code")
        tokens = await provider.exchange_code(
            code=code,
            redirect_uri=callback_url(ctx, provider.name),
            code_verifier=pkce_verifier(browser, state),
        )
        identity = await provider.fetch_identity(tokens, nonce_hash=nonce_hash, now=ctx.clock())
    except UpstreamError as exc:
        ctx.audit("federation.failed", provider=provider.name, reason=exc.reason, detail=exc.detail)
        raise AccessDeniedError(
            f"Signing in with {provider.label} failed: {exc.reason}.", detail=exc.detail
        ) from None
    subject = await link_identity(ctx, provider.name, identity)
    ctx.audit("federation.succeeded", provider=provider.name, subject=subject)
    return CompletedLogin(pending, subject, identity, tokens)


async def link_identity(ctx: ServerContext, provider: str, identity: UpstreamIdentity) -> str:
    """The local subject of an upstream identity: the linked one, or a new local user."""
    now = ctx.clock()
    linked = await ctx.storage.get_linked_identity(ctx.tenant, provider, identity.subject)
    if linked is not None:
        user = await ctx.storage.get_user(ctx.tenant, linked.subject)
        if user is not None and user.disabled:
            raise AccessDeniedError("This account is disabled.")
        if user is not None:
            return user.user_id
    user = await _new_federated_user(ctx, provider, identity, now)
    await ctx.storage.save_linked_identity(
        LinkedIdentity(
            tenant_id=ctx.tenant,
            provider=provider,
            upstream_subject=identity.subject,
            subject=user.user_id,
            created_at=now,
            email=identity.email,
            display_name=identity.display_name,
        )
    )
    ctx.audit("federation.linked", provider=provider, subject=user.user_id)
    return user.user_id


async def _new_federated_user(
    ctx: ServerContext, provider: str, identity: UpstreamIdentity, now: int
) -> User:
    """A local user without a password, named after the upstream account."""
    base = identity.username or identity.email or identity.subject
    name = f"{provider}.{_USERNAME_CHARS.sub('_', base)}"[:48]
    for attempt in range(3):
        username = name if attempt == 0 else f"{name}.{new_secret(3)}"
        user = User(
            tenant_id=ctx.tenant,
            user_id=new_secret(12),
            username=username,
            password_hash=NO_PASSWORD,
            created_at=now,
            display_name=identity.display_name,
        )
        if await ctx.storage.get_user_by_username(ctx.tenant, username) is not None:
            continue
        try:
            await ctx.storage.save_user(user)
        except StorageError:
            continue
        return user
    raise AccessDeniedError("Could not create an account for this sign-in; try again.")


async def keep_tokens(
    ctx: ServerContext,
    federation: Federation,
    provider: Provider,
    *,
    grant_id: str,
    subject: str,
    tokens: UpstreamTokens,
) -> None:
    """Store the upstream tokens under the grant, encrypted, when the provider keeps them."""
    if not provider.keep_tokens:
        return
    cipher = federation.cipher
    if cipher is None:  # settings validation makes this unreachable
        raise StorageError("federation.token_key is not configured")
    now = ctx.clock()

    def seal(value: str, field: str) -> str:
        return cipher.encrypt(value, token_context(ctx.tenant, grant_id, provider.name, field))

    await ctx.storage.save_upstream_token(
        UpstreamToken(
            tenant_id=ctx.tenant,
            grant_id=grant_id,
            subject=subject,
            provider=provider.name,
            access_token_enc=seal(tokens.access_token, "access_token"),
            updated_at=now,
            refresh_token_enc=seal(tokens.refresh_token, "refresh_token")
            if tokens.refresh_token
            else None,
            expires_at=now + tokens.expires_in if tokens.expires_in else None,
            scope=tokens.scope,
        )
    )


async def approve_and_keep(
    ctx: ServerContext,
    federation: Federation,
    provider: Provider,
    done: CompletedLogin,
    req: authz.AuthorizationRequest,
) -> str:
    """Approve the request for the linked subject, keep the upstream tokens under the new
    grant, and return the client redirect. If the tokens cannot be stored the grant is
    revoked: a grant whose tool calls would fail is worse than a clear error."""
    url, grant = await authz.approve_with_grant(ctx, done.subject, req)
    try:
        await keep_tokens(
            ctx,
            federation,
            provider,
            grant_id=grant.grant_id,
            subject=done.subject,
            tokens=done.tokens,
        )
    except Exception:
        await ctx.storage.revoke_grant(ctx.tenant, grant.grant_id, ctx.clock())
        raise
    return url


async def remember_browser(ctx: ServerContext, subject: str) -> tuple[str, int]:
    """A new hint (raw cookie value, max-age): this browser last signed in as ``subject``.

    Stored like a login session but under a different hash, so the hint can never be
    presented as a session cookie.
    """
    raw = new_secret()
    now = ctx.clock()
    await ctx.storage.save_session(
        BrowserSession(
            ctx.tenant, hash_secret(_HINT_RECORD + raw), subject, now, now + HINT_TTL_SECONDS
        )
    )
    return raw, HINT_TTL_SECONDS


async def remembered_subject(ctx: ServerContext, raw: str | None) -> str | None:
    """The subject a hint cookie names, while it is live."""
    if not raw or len(raw) > 128:
        return None
    hint = await ctx.storage.get_session(ctx.tenant, hash_secret(_HINT_RECORD + raw), ctx.clock())
    return hint.subject if hint is not None else None
