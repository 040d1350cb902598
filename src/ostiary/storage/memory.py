"""In-memory reference implementation of the storage protocol (``core/storage.py``; RFC 9700 §4.14).

Dicts keyed by ``(tenant_id, id)``; every operation runs under one ``asyncio.Lock`` so
single-use codes, refresh rotation and cascading revocation are atomic within the process.
Records holding dicts (clients, keys, interactions) are stored as a JSON round trip and
copied out, so they come back exactly as from the SQL backend (tuples as lists, keys as
strings) and a caller mutating one cannot change what is stored.
Nothing survives a restart: this backend is for tests and ``memory://`` demos only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import replace
from typing import Protocol, TypeVar

from ostiary.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    BrowserSession,
    Client,
    CodePlan,
    Consent,
    ConsumeResult,
    ConsumeStatus,
    Grant,
    Interaction,
    IssuedTokens,
    LinkedIdentity,
    Note,
    RefreshToken,
    RotateResult,
    RotateStatus,
    RotationPlan,
    SigningKey,
    Stats,
    UpstreamToken,
    User,
)
from ostiary.errors import OAuthError, StorageError
from ostiary.settings import MAX_REFRESH_GRACE_SECONDS
from ostiary.storage.rules import PENDING_UPSTREAM_TTL, consume_status, rotation_status

T = TypeVar("T", RefreshToken, AccessTokenRecord)
J = TypeVar("J", Client, SigningKey, Interaction)
K = TypeVar("K")
V = TypeVar("V")


def _drop(table: dict[K, V], dead: Callable[[V], bool]) -> int:
    """Delete the values ``dead`` selects; return how many went."""
    keys = [key for key, value in table.items() if dead(value)]
    for key in keys:
        del table[key]
    return len(keys)


class MemoryStorage:
    """Dict-backed :class:`~ostiary.core.storage.Storage`; atomic under one asyncio lock."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._clients: dict[tuple[str, str], Client] = {}
        self._users: dict[tuple[str, str], User] = {}
        self._grants: dict[tuple[str, str], Grant] = {}
        self._codes: dict[tuple[str, str], AuthorizationCode] = {}
        self._refresh: dict[tuple[str, str], RefreshToken] = {}
        #: (tenant, token hash) -> the hash of the token it replaced, to forget that one's
        #: sealed successor when this one rotates in turn (SQL finds it by successor_hash).
        self._previous: dict[tuple[str, str], str] = {}
        self._access: dict[tuple[str, str], AccessTokenRecord] = {}
        self._consents: dict[tuple[str, str, str, str | None], Consent] = {}
        self._keys: dict[tuple[str, str], SigningKey] = {}
        self._interactions: dict[tuple[str, str], Interaction] = {}
        self._sessions: dict[tuple[str, str], BrowserSession] = {}
        self._jtis: dict[tuple[str, str], int] = {}
        self._rates: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._notes: dict[tuple[str, str, str], Note] = {}
        self._usage: dict[tuple[str, str, str], int] = {}
        self._links: dict[tuple[str, str, str], LinkedIdentity] = {}
        self._upstream: dict[tuple[str, str, str], UpstreamToken] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Nothing to create; present for the protocol."""

    async def close(self) -> None:
        """Nothing to release; the data stays readable until the object is dropped."""

    async def healthy(self) -> bool:
        return True

    # -- clients -----------------------------------------------------------------------------

    async def save_client(self, client: Client) -> None:
        async with self._lock:
            self._clients[(client.tenant_id, client.client_id)] = _as_json(client, "jwks", "extra")

    async def get_client(self, tenant_id: str, client_id: str) -> Client | None:
        found = self._clients.get((tenant_id, client_id))
        return None if found is None else _detached(found)

    async def delete_client(self, tenant_id: str, client_id: str) -> bool:
        async with self._lock:
            existed = self._clients.pop((tenant_id, client_id), None) is not None
            self._revoke_where(tenant_id, lambda g: g.client_id == client_id)
            return existed

    async def list_clients(self, tenant_id: str) -> list[Client]:
        found = [_detached(c) for (t, _), c in self._clients.items() if t == tenant_id]
        return sorted(found, key=lambda c: c.client_id)

    # -- users -------------------------------------------------------------------------------

    async def save_user(self, user: User) -> None:
        async with self._lock:
            for (tenant, user_id), other in self._users.items():
                taken = tenant == user.tenant_id and other.username == user.username
                if taken and user_id != user.user_id:
                    raise StorageError(f"username {user.username!r} is taken")
            self._users[(user.tenant_id, user.user_id)] = user

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        return self._users.get((tenant_id, user_id))

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None:
        for (tenant, _), user in self._users.items():
            if tenant == tenant_id and user.username == username:
                return user
        return None

    async def list_users(self, tenant_id: str) -> list[User]:
        found = [u for (t, _), u in self._users.items() if t == tenant_id]
        return sorted(found, key=lambda u: u.username)

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        async with self._lock:
            existed = self._users.pop((tenant_id, user_id), None) is not None
            self._revoke_where(tenant_id, lambda g: g.subject == user_id)
            _drop(self._links, lambda i: (i.tenant_id, i.subject) == (tenant_id, user_id))
            return existed

    # -- grants ------------------------------------------------------------------------------

    async def save_grant(self, grant: Grant) -> None:
        async with self._lock:
            self._grants[(grant.tenant_id, grant.grant_id)] = grant

    async def open_grant(
        self,
        grant: Grant,
        *,
        code: AuthorizationCode | None = None,
        access_token: AccessTokenRecord | None = None,
    ) -> None:
        async with self._lock:
            self._grants[(grant.tenant_id, grant.grant_id)] = grant
            if code is not None:
                self._codes[(code.tenant_id, code.code_hash)] = code
            if access_token is not None:
                key = (access_token.tenant_id, access_token.jti)
                self._access[key] = self._under_grant(access_token)

    async def get_grant(self, tenant_id: str, grant_id: str) -> Grant | None:
        return self._grants.get((tenant_id, grant_id))

    async def list_grants(self, tenant_id: str, subject: str) -> list[Grant]:
        found = [
            g
            for (t, _), g in self._grants.items()
            if t == tenant_id and g.subject == subject and g.revoked_at is None
        ]
        return sorted(found, key=lambda g: (g.created_at, g.grant_id), reverse=True)

    async def list_client_grants(self, tenant_id: str, client_id: str) -> list[Grant]:
        found = [
            g
            for (t, _), g in self._grants.items()
            if t == tenant_id and g.client_id == client_id and g.revoked_at is None
        ]
        return sorted(found, key=lambda g: (g.created_at, g.grant_id), reverse=True)

    async def touch_grant(self, tenant_id: str, grant_id: str, now: int) -> None:
        async with self._lock:
            grant = self._grants.get((tenant_id, grant_id))
            if grant is not None:
                self._grants[(tenant_id, grant_id)] = replace(grant, last_used_at=now)

    async def revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        async with self._lock:
            return self._revoke_grant(tenant_id, grant_id, now)

    def _revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        # Cascade even when the grant is gone or already revoked: stray live tokens of a
        # grant must never survive a revocation request.
        self._cascade(tenant_id, grant_id, now)
        grant = self._grants.get((tenant_id, grant_id))
        if grant is None or grant.revoked_at is not None:
            return False
        self._grants[(tenant_id, grant_id)] = replace(grant, revoked_at=now)
        return True

    def _revoke_where(self, tenant_id: str, match: Callable[[Grant], bool]) -> None:
        """Revoke (with cascade) every live grant of the tenant that ``match`` selects.

        The protocol gives delete_client/delete_user no ``now``, so the wall clock is used.
        """
        now = int(time.time())
        for (tenant, grant_id), grant in list(self._grants.items()):
            if tenant == tenant_id and match(grant):
                self._cascade(tenant_id, grant_id, now)
                if grant.revoked_at is None:
                    self._grants[(tenant, grant_id)] = replace(grant, revoked_at=now)

    def _under_grant(self, token: T) -> T:
        """A token saved under a revoked grant is stored revoked (see the SQL backend)."""
        grant = self._grants.get((token.tenant_id, token.grant_id))
        if token.revoked_at is None and grant is not None and grant.revoked_at is not None:
            return replace(token, revoked_at=grant.revoked_at)
        return token

    def _cascade(self, tenant_id: str, grant_id: str, now: int) -> None:
        """Retire every code and token of the grant, drop its upstream tokens (lock held)."""
        _drop(self._upstream, lambda u: (u.tenant_id, u.grant_id) == (tenant_id, grant_id))
        for key, code in self._codes.items():
            if key[0] == tenant_id and code.grant_id == grant_id and code.consumed_at is None:
                self._codes[key] = replace(code, consumed_at=now)
        for key, token in self._refresh.items():
            if key[0] == tenant_id and token.grant_id == grant_id and token.revoked_at is None:
                self._refresh[key] = _revoked(token, now)
        for key, record in self._access.items():
            if key[0] == tenant_id and record.grant_id == grant_id and record.revoked_at is None:
                self._access[key] = replace(record, revoked_at=now)

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        async with self._lock:
            self._codes[(code.tenant_id, code.code_hash)] = code

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        async with self._lock:
            return self._consume(tenant_id, code_hash, now)

    def _consume(self, tenant_id: str, code_hash: str, now: int) -> ConsumeResult:
        code = self._codes.get((tenant_id, code_hash))
        if code is None:
            return ConsumeResult(ConsumeStatus.NOT_FOUND)
        status = consume_status(code, now)
        if status is ConsumeStatus.OK:
            code = replace(code, consumed_at=now)
            self._codes[(tenant_id, code_hash)] = code
        return ConsumeResult(status, code)

    async def redeem_authorization_code(
        self, tenant_id: str, code_hash: str, now: int, plan: CodePlan
    ) -> ConsumeResult:
        async with self._lock:
            result = self._consume(tenant_id, code_hash, now)
            if result.status is ConsumeStatus.REPLAYED and result.record is not None:
                self._revoke_grant(tenant_id, result.record.grant_id, now)
            if result.status is ConsumeStatus.OK and result.record is not None:
                self._book_code(result.record, now, plan)
            return result

    async def book_redeemed_code(self, code: AuthorizationCode, now: int, plan: CodePlan) -> None:
        async with self._lock:
            self._book_code(code, now, plan)

    def _book_code(self, code: AuthorizationCode, now: int, plan: CodePlan) -> None:
        """Run ``plan`` and store what it issues; a refusal revokes the grant (lock held)."""
        try:
            issued = plan(code, self._grants.get((code.tenant_id, code.grant_id)))
        except OAuthError:
            self._revoke_grant(code.tenant_id, code.grant_id, now)
            raise
        if issued.access_token is not None:
            record = issued.access_token
            self._access[(record.tenant_id, record.jti)] = self._under_grant(record)
        if issued.refresh_token is not None:
            token = issued.refresh_token
            self._refresh[(token.tenant_id, token.token_hash)] = self._under_grant(token)

    # -- refresh tokens ----------------------------------------------------------------------

    async def save_refresh_token(self, token: RefreshToken) -> None:
        async with self._lock:
            self._refresh[(token.tenant_id, token.token_hash)] = self._under_grant(token)

    async def get_refresh_token(self, tenant_id: str, token_hash: str) -> RefreshToken | None:
        return self._refresh.get((tenant_id, token_hash))

    async def rotate_refresh_token(
        self,
        tenant_id: str,
        old_hash: str,
        new: RefreshToken,
        now: int,
        grace_seconds: int,
        *,
        sealed_successor: str | None = None,
        access_token: AccessTokenRecord | None = None,
    ) -> RotateResult:
        issued = IssuedTokens(access_token, new, sealed_successor)
        return await self.refresh_grant(
            tenant_id, old_hash, now, grace_seconds, lambda _token, _grant: issued
        )

    async def refresh_grant(
        self, tenant_id: str, token_hash: str, now: int, grace_seconds: int, plan: RotationPlan
    ) -> RotateResult:
        async with self._lock:
            old = self._refresh.get((tenant_id, token_hash))
            if old is None:
                return RotateResult(RotateStatus.NOT_FOUND)
            issued = plan(old, self._grants.get((tenant_id, old.grant_id)))
            new = issued.refresh_token
            assert new is not None, "a rotation plan issues the successor"
            successor = None
            if old.successor_hash is not None:
                successor = self._refresh.get((tenant_id, old.successor_hash))
            status = rotation_status(old, now, grace_seconds, successor)
            if status in (RotateStatus.OK, RotateStatus.SUPERSEDED):
                self._used(tenant_id, old.grant_id, now, issued.access_token)
            if status is RotateStatus.SUPERSEDED:
                return RotateResult(status, old, successor)
            if status is not RotateStatus.OK:
                return RotateResult(status, old)
            old = replace(
                old,
                rotated_at=now,
                successor_hash=new.token_hash,
                sealed_successor=issued.sealed_successor if grace_seconds > 0 else None,
            )
            self._refresh[(tenant_id, token_hash)] = old
            self._forget_previous(tenant_id, token_hash)
            self._previous[(new.tenant_id, new.token_hash)] = token_hash
            self._refresh[(new.tenant_id, new.token_hash)] = self._under_grant(new)
            return RotateResult(status, old)

    def _used(
        self, tenant_id: str, grant_id: str, now: int, access_token: AccessTokenRecord | None
    ) -> None:
        """A refresh went through (lock held): touch the grant, book the access token."""
        grant = self._grants.get((tenant_id, grant_id))
        if grant is not None:
            self._grants[(tenant_id, grant_id)] = replace(grant, last_used_at=now)
        if access_token is not None:
            self._access[(access_token.tenant_id, access_token.jti)] = self._under_grant(
                access_token
            )

    def _forget_previous(self, tenant_id: str, token_hash: str) -> None:
        """Clear the sealed successor of the token ``token_hash`` replaced (lock held)."""
        previous = self._previous.pop((tenant_id, token_hash), None)
        token = self._refresh.get((tenant_id, previous)) if previous is not None else None
        if token is not None and token.successor_hash == token_hash:
            self._refresh[(tenant_id, token.token_hash)] = replace(token, sealed_successor=None)

    async def revoke_refresh_token(self, tenant_id: str, token_hash: str, now: int) -> bool:
        async with self._lock:
            token = self._refresh.get((tenant_id, token_hash))
            if token is None or token.revoked_at is not None:
                return False
            self._refresh[(tenant_id, token_hash)] = _revoked(token, now)
            return True

    # -- access-token records ----------------------------------------------------------------

    async def save_access_token(self, record: AccessTokenRecord) -> None:
        async with self._lock:
            self._access[(record.tenant_id, record.jti)] = self._under_grant(record)

    async def get_access_token(self, tenant_id: str, jti: str) -> AccessTokenRecord | None:
        return self._access.get((tenant_id, jti))

    async def revoke_access_token(self, tenant_id: str, jti: str, now: int) -> bool:
        async with self._lock:
            record = self._access.get((tenant_id, jti))
            if record is None or record.revoked_at is not None:
                return False
            self._access[(tenant_id, jti)] = replace(record, revoked_at=now)
            return True

    # -- consents ----------------------------------------------------------------------------

    async def save_consent(self, consent: Consent) -> None:
        key = (consent.tenant_id, consent.subject, consent.client_id, consent.resource)
        async with self._lock:
            self._consents[key] = consent

    async def get_consent(
        self, tenant_id: str, subject: str, client_id: str, resource: str | None
    ) -> Consent | None:
        return self._consents.get((tenant_id, subject, client_id, resource))

    async def delete_consents(self, tenant_id: str, subject: str, client_id: str) -> int:
        async with self._lock:
            return _drop(
                self._consents,
                lambda c: (c.tenant_id, c.subject, c.client_id) == (tenant_id, subject, client_id),
            )

    # -- signing keys ------------------------------------------------------------------------

    async def save_signing_key(self, key: SigningKey) -> None:
        async with self._lock:
            self._keys[(key.tenant_id, key.kid)] = _as_json(key, "private_jwk")

    async def list_signing_keys(self, tenant_id: str) -> list[SigningKey]:
        found = [deepcopy(k) for (t, _), k in self._keys.items() if t == tenant_id]
        return sorted(found, key=lambda k: (k.created_at, k.kid), reverse=True)

    # -- interactions and browser sessions ---------------------------------------------------

    async def save_interaction(self, interaction: Interaction) -> None:
        async with self._lock:
            key = (interaction.tenant_id, interaction.interaction_id)
            self._interactions[key] = _as_json(interaction, "params")

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        found = self._interactions.get((tenant_id, interaction_id))
        return deepcopy(found) if found is not None and found.expires_at > now else None

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        async with self._lock:
            return self._interactions.pop((tenant_id, interaction_id), None) is not None

    async def save_session(self, session: BrowserSession) -> None:
        async with self._lock:
            self._sessions[(session.tenant_id, session.session_hash)] = session

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None:
        found = self._sessions.get((tenant_id, session_hash))
        return found if found is not None and found.expires_at > now else None

    async def delete_session(self, tenant_id: str, session_hash: str) -> None:
        async with self._lock:
            self._sessions.pop((tenant_id, session_hash), None)

    # -- replay cache and rate limits --------------------------------------------------------

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        async with self._lock:
            seen = self._jtis.get((tenant_id, key))
            if seen is not None and seen > now:
                return False
            self._jtis[(tenant_id, key)] = expires_at
            return True

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        start = now - now % window_seconds
        async with self._lock:
            window, count, _ = self._rates.get((tenant_id, bucket), (start, 0, 0))
            count = count + 1 if window == start else 1
            self._rates[(tenant_id, bucket)] = (start, count, start + window_seconds)
            return count

    # -- notes and API usage (demo MCP server) ----------------------------------------------

    async def save_note(self, note: Note) -> None:
        async with self._lock:
            self._notes[(note.tenant_id, note.subject, note.note_id)] = note

    async def get_note(self, tenant_id: str, subject: str, note_id: str) -> Note | None:
        return self._notes.get((tenant_id, subject, note_id))

    async def list_notes(self, tenant_id: str, subject: str) -> list[Note]:
        found = [n for (t, s, _), n in self._notes.items() if (t, s) == (tenant_id, subject)]
        return sorted(found, key=lambda n: (n.created_at, n.note_id))

    async def delete_note(self, tenant_id: str, subject: str, note_id: str) -> bool:
        async with self._lock:
            return self._notes.pop((tenant_id, subject, note_id), None) is not None

    async def record_usage(self, tenant_id: str, subject: str, name: str, now: int) -> int:
        async with self._lock:
            count = self._usage.get((tenant_id, subject, name), 0) + 1
            self._usage[(tenant_id, subject, name)] = count
            return count

    async def get_usage(self, tenant_id: str, subject: str) -> dict[str, int]:
        found = {n: c for (t, s, n), c in self._usage.items() if (t, s) == (tenant_id, subject)}
        return dict(sorted(found.items()))

    # -- federation: linked identities and upstream tokens -----------------------------------

    async def save_linked_identity(self, identity: LinkedIdentity) -> None:
        async with self._lock:
            key = (identity.tenant_id, identity.provider, identity.upstream_subject)
            self._links[key] = identity

    async def get_linked_identity(
        self, tenant_id: str, provider: str, upstream_subject: str
    ) -> LinkedIdentity | None:
        return self._links.get((tenant_id, provider, upstream_subject))

    async def list_linked_identities(self, tenant_id: str, subject: str) -> list[LinkedIdentity]:
        found = [
            i for (t, _, _), i in self._links.items() if t == tenant_id and i.subject == subject
        ]
        return sorted(found, key=lambda i: (i.created_at, i.provider, i.upstream_subject))

    async def save_upstream_token(self, token: UpstreamToken) -> None:
        async with self._lock:
            grant = self._grants.get((token.tenant_id, token.grant_id))
            if grant is not None and grant.revoked_at is not None:
                return  # a revoked grant keeps no upstream tokens (see the SQL backend)
            self._upstream[(token.tenant_id, token.grant_id, token.provider)] = token

    async def get_upstream_token(
        self, tenant_id: str, grant_id: str, provider: str
    ) -> UpstreamToken | None:
        return self._upstream.get((tenant_id, grant_id, provider))

    async def delete_upstream_tokens(self, tenant_id: str, grant_id: str) -> int:
        async with self._lock:
            return _drop(
                self._upstream, lambda u: (u.tenant_id, u.grant_id) == (tenant_id, grant_id)
            )

    # -- housekeeping ------------------------------------------------------------------------

    def _upstream_dead(self, token: UpstreamToken, now: int) -> bool:
        """Its grant expired (and is about to be purged), or its pending login was abandoned."""
        grant = self._grants.get((token.tenant_id, token.grant_id))
        return (grant is not None and grant.expires_at <= now) or _pending_abandoned(token, now)

    async def stats(self, tenant_id: str, now: int) -> Stats:
        return Stats(
            clients=_count(self._clients.values(), tenant_id, lambda _: True),
            users=_count(self._users.values(), tenant_id, lambda _: True),
            live_grants=_count(
                self._grants.values(),
                tenant_id,
                lambda g: g.revoked_at is None and g.expires_at > now,
            ),
            live_authorization_codes=_count(
                self._codes.values(),
                tenant_id,
                lambda c: c.consumed_at is None and c.expires_at > now,
            ),
            live_access_tokens=_count(
                self._access.values(),
                tenant_id,
                lambda a: a.revoked_at is None and a.expires_at > now,
            ),
            live_refresh_tokens=_count(
                self._refresh.values(), tenant_id, lambda r: _refresh_live(r, now)
            ),
        )

    async def purge_expired(self, now: int) -> int:
        async with self._lock:
            removed = (
                _drop(self._upstream, lambda u: self._upstream_dead(u, now))
                + _drop(self._codes, lambda c: c.expires_at <= now)
                + _drop(self._refresh, lambda r: r.expires_at <= now or r.idle_expires_at <= now)
                + _drop(self._access, lambda a: a.expires_at <= now)
                + _drop(self._grants, lambda g: g.expires_at <= now)
                + _drop(self._interactions, lambda i: i.expires_at <= now)
                + _drop(self._sessions, lambda s: s.expires_at <= now)
                + _drop(self._keys, lambda k: k.expires_at is not None and k.expires_at <= now)
                + _drop(self._jtis, lambda expires_at: expires_at <= now)
                + _drop(self._rates, lambda rate: rate[2] <= now)
            )
            self._forget_old_successors(now)
            return removed

    def _forget_old_successors(self, now: int) -> None:
        """Clear sealed successors past any grace window; drop stale links (lock held)."""
        since = now - MAX_REFRESH_GRACE_SECONDS
        for key, token in self._refresh.items():
            rotated_at = token.rotated_at
            if (
                token.sealed_successor is not None
                and rotated_at is not None
                and rotated_at <= since
            ):
                self._refresh[key] = replace(token, sealed_successor=None)
        for key in [key for key in self._previous if key not in self._refresh]:
            del self._previous[key]


def _revoked(token: RefreshToken, now: int) -> RefreshToken:
    """A revoked token keeps no sealed successor."""
    return replace(token, revoked_at=now, sealed_successor=None)


def _pending_abandoned(token: UpstreamToken, now: int) -> bool:
    return token.grant_id.startswith("pending:") and token.updated_at <= now - PENDING_UPSTREAM_TTL


def _refresh_live(token: RefreshToken, now: int) -> bool:
    return (
        token.revoked_at is None
        and token.rotated_at is None
        and token.expires_at > now
        and token.idle_expires_at > now
    )


def _detached(client: Client) -> Client:
    """A copy the caller may change freely: only the two dict fields are mutable (a deep
    copy of the whole frozen record cost a tenth of a token request)."""
    jwks = None if client.jwks is None else deepcopy(client.jwks)
    return replace(client, jwks=jwks, extra=deepcopy(client.extra) if client.extra else {})


def _as_json(record: J, *names: str) -> J:
    """``record`` with its dict fields normalised through JSON, as a database stores them."""
    try:
        changes = {name: json.loads(json.dumps(getattr(record, name))) for name in names}
    except (TypeError, ValueError) as exc:
        raise StorageError(f"storage backend failed: {type(exc).__name__}") from exc
    return replace(record, **changes)


class _Owned(Protocol):
    @property
    def tenant_id(self) -> str: ...


R = TypeVar("R", bound=_Owned)


def _count(values: Iterable[R], tenant_id: str, live: Callable[[R], bool]) -> int:
    return sum(1 for value in values if value.tenant_id == tenant_id and live(value))
