"""A durable store plus Redis for the ephemeral records, as one ``Storage`` (RFC 9700 §4.14).

:class:`TieredStorage` routes authorization codes, the jti replay cache, rate limits,
interactions and browser sessions to a :class:`~ostiary.storage.redis.RedisEphemeralStore`
and everything else (clients, users, grants, refresh tokens, access-token records, consents,
keys, notes, identities) to the durable SQL or memory store.

The one rule that spans both: a revocation reaches the codes. ``revoke_grant`` revokes in
the durable store (tokens, upstream tokens), then consumes the grant's codes in Redis;
``delete_client`` and ``delete_user`` do the same through Redis' per-client and per-subject
code indexes. The durable step goes first so a code saved while it runs is still caught by
the Redis step; a failure of either raises :class:`~ostiary.errors.StorageError`. A code
that escaped anyway could only mint tokens under a revoked grant, and the durable store
saves those already revoked.
"""

from __future__ import annotations

import time
from dataclasses import replace

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
    LinkedIdentity,
    Note,
    RefreshToken,
    RotateResult,
    RotationPlan,
    SigningKey,
    Stats,
    UpstreamToken,
    User,
)
from ostiary.core.storage import Storage
from ostiary.errors import OAuthError
from ostiary.storage.redis import RedisEphemeralStore


class TieredStorage:
    """:class:`~ostiary.core.storage.Storage` over a durable store and Redis.

    Args:
        durable: The SQL (or memory) store; owns everything but the ephemeral records.
        ephemeral: The Redis store for codes, replay cache, rate limits, interactions and
            sessions.

    Example:
        >>> redis = RedisEphemeralStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
        >>> storage = TieredStorage(SqlStorage(url), redis)  # doctest: +SKIP
    """

    def __init__(self, durable: Storage, ephemeral: RedisEphemeralStore) -> None:
        self.durable = durable
        self.ephemeral = ephemeral

    # -- lifecycle and housekeeping ----------------------------------------------------------

    async def initialize(self) -> None:
        await self.durable.initialize()
        await self.ephemeral.initialize()

    async def close(self) -> None:
        try:
            await self.durable.close()
        finally:
            await self.ephemeral.close()

    async def healthy(self) -> bool:
        return await self.durable.healthy() and await self.ephemeral.healthy()

    async def stats(self, tenant_id: str, now: int) -> Stats:
        counts = await self.durable.stats(tenant_id, now)
        codes = await self.ephemeral.live_codes(tenant_id, now)
        return replace(counts, live_authorization_codes=codes)

    async def purge_expired(self, now: int) -> int:
        """The durable store's purge; Redis expires its keys by itself."""
        return await self.durable.purge_expired(now) + await self.ephemeral.purge_expired(now)

    # -- the cascade across both stores ------------------------------------------------------

    async def revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        revoked = await self.durable.revoke_grant(tenant_id, grant_id, now)
        await self.ephemeral.retire_codes(tenant_id, "grant_id", grant_id, now)
        return revoked

    async def delete_client(self, tenant_id: str, client_id: str) -> bool:
        existed = await self.durable.delete_client(tenant_id, client_id)
        await self.ephemeral.retire_codes(tenant_id, "client_id", client_id, int(time.time()))
        return existed

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        existed = await self.durable.delete_user(tenant_id, user_id)
        await self.ephemeral.retire_codes(tenant_id, "subject", user_id, int(time.time()))
        return existed

    # -- ephemeral: Redis --------------------------------------------------------------------

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        await self.ephemeral.save_authorization_code(code)

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        return await self.ephemeral.consume_authorization_code(tenant_id, code_hash, now)

    async def redeem_authorization_code(
        self, tenant_id: str, code_hash: str, now: int, plan: CodePlan
    ) -> ConsumeResult:
        """Consume in Redis, then one durable transaction for the grant and the tokens."""
        result = await self.ephemeral.consume_authorization_code(tenant_id, code_hash, now)
        code = result.record
        if result.status is ConsumeStatus.REPLAYED and code is not None:
            await self.revoke_grant(tenant_id, code.grant_id, now)
        if result.status is ConsumeStatus.OK and code is not None:
            await self.book_redeemed_code(code, now, plan)
        return result

    async def book_redeemed_code(self, code: AuthorizationCode, now: int, plan: CodePlan) -> None:
        try:
            await self.durable.book_redeemed_code(code, now, plan)
        except OAuthError:
            # The durable store revoked the grant; retire its other codes here too.
            await self.ephemeral.retire_codes(code.tenant_id, "grant_id", code.grant_id, now)
            raise

    async def save_interaction(self, interaction: Interaction) -> None:
        await self.ephemeral.save_interaction(interaction)

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        return await self.ephemeral.get_interaction(tenant_id, interaction_id, now)

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        return await self.ephemeral.delete_interaction(tenant_id, interaction_id)

    async def save_session(self, session: BrowserSession) -> None:
        await self.ephemeral.save_session(session)

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None:
        return await self.ephemeral.get_session(tenant_id, session_hash, now)

    async def delete_session(self, tenant_id: str, session_hash: str) -> None:
        await self.ephemeral.delete_session(tenant_id, session_hash)

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        return await self.ephemeral.remember_jti(tenant_id, key, expires_at, now)

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        return await self.ephemeral.hit(tenant_id, bucket, window_seconds, now)

    # -- durable: clients, users, grants -----------------------------------------------------

    async def save_client(self, client: Client) -> None:
        await self.durable.save_client(client)

    async def get_client(self, tenant_id: str, client_id: str) -> Client | None:
        return await self.durable.get_client(tenant_id, client_id)

    async def list_clients(self, tenant_id: str) -> list[Client]:
        return await self.durable.list_clients(tenant_id)

    async def save_user(self, user: User) -> None:
        await self.durable.save_user(user)

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        return await self.durable.get_user(tenant_id, user_id)

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None:
        return await self.durable.get_user_by_username(tenant_id, username)

    async def list_users(self, tenant_id: str) -> list[User]:
        return await self.durable.list_users(tenant_id)

    async def save_grant(self, grant: Grant) -> None:
        await self.durable.save_grant(grant)

    async def open_grant(
        self,
        grant: Grant,
        *,
        code: AuthorizationCode | None = None,
        access_token: AccessTokenRecord | None = None,
    ) -> None:
        """The grant (and access token) durably first, then the code in Redis: a code is
        never redeemable before its grant exists."""
        await self.durable.open_grant(grant, access_token=access_token)
        if code is not None:
            await self.ephemeral.save_authorization_code(code)

    async def get_grant(self, tenant_id: str, grant_id: str) -> Grant | None:
        return await self.durable.get_grant(tenant_id, grant_id)

    async def list_grants(self, tenant_id: str, subject: str) -> list[Grant]:
        return await self.durable.list_grants(tenant_id, subject)

    async def list_client_grants(self, tenant_id: str, client_id: str) -> list[Grant]:
        return await self.durable.list_client_grants(tenant_id, client_id)

    async def touch_grant(self, tenant_id: str, grant_id: str, now: int) -> None:
        await self.durable.touch_grant(tenant_id, grant_id, now)

    # -- durable: tokens ---------------------------------------------------------------------

    async def save_refresh_token(self, token: RefreshToken) -> None:
        await self.durable.save_refresh_token(token)

    async def get_refresh_token(self, tenant_id: str, token_hash: str) -> RefreshToken | None:
        return await self.durable.get_refresh_token(tenant_id, token_hash)

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
        return await self.durable.rotate_refresh_token(
            tenant_id,
            old_hash,
            new,
            now,
            grace_seconds,
            sealed_successor=sealed_successor,
            access_token=access_token,
        )

    async def refresh_grant(
        self, tenant_id: str, token_hash: str, now: int, grace_seconds: int, plan: RotationPlan
    ) -> RotateResult:
        return await self.durable.refresh_grant(tenant_id, token_hash, now, grace_seconds, plan)

    async def revoke_refresh_token(self, tenant_id: str, token_hash: str, now: int) -> bool:
        return await self.durable.revoke_refresh_token(tenant_id, token_hash, now)

    async def save_access_token(self, record: AccessTokenRecord) -> None:
        await self.durable.save_access_token(record)

    async def get_access_token(self, tenant_id: str, jti: str) -> AccessTokenRecord | None:
        return await self.durable.get_access_token(tenant_id, jti)

    async def revoke_access_token(self, tenant_id: str, jti: str, now: int) -> bool:
        return await self.durable.revoke_access_token(tenant_id, jti, now)

    # -- durable: consents and keys ----------------------------------------------------------

    async def save_consent(self, consent: Consent) -> None:
        await self.durable.save_consent(consent)

    async def get_consent(
        self, tenant_id: str, subject: str, client_id: str, resource: str | None
    ) -> Consent | None:
        return await self.durable.get_consent(tenant_id, subject, client_id, resource)

    async def delete_consents(self, tenant_id: str, subject: str, client_id: str) -> int:
        return await self.durable.delete_consents(tenant_id, subject, client_id)

    async def save_signing_key(self, key: SigningKey) -> None:
        await self.durable.save_signing_key(key)

    async def list_signing_keys(self, tenant_id: str) -> list[SigningKey]:
        return await self.durable.list_signing_keys(tenant_id)

    # -- durable: notes, usage, identities ---------------------------------------------------

    async def save_note(self, note: Note) -> None:
        await self.durable.save_note(note)

    async def get_note(self, tenant_id: str, subject: str, note_id: str) -> Note | None:
        return await self.durable.get_note(tenant_id, subject, note_id)

    async def list_notes(self, tenant_id: str, subject: str) -> list[Note]:
        return await self.durable.list_notes(tenant_id, subject)

    async def delete_note(self, tenant_id: str, subject: str, note_id: str) -> bool:
        return await self.durable.delete_note(tenant_id, subject, note_id)

    async def record_usage(self, tenant_id: str, subject: str, name: str, now: int) -> int:
        return await self.durable.record_usage(tenant_id, subject, name, now)

    async def get_usage(self, tenant_id: str, subject: str) -> dict[str, int]:
        return await self.durable.get_usage(tenant_id, subject)

    async def save_linked_identity(self, identity: LinkedIdentity) -> None:
        await self.durable.save_linked_identity(identity)

    async def get_linked_identity(
        self, tenant_id: str, provider: str, upstream_subject: str
    ) -> LinkedIdentity | None:
        return await self.durable.get_linked_identity(tenant_id, provider, upstream_subject)

    async def list_linked_identities(self, tenant_id: str, subject: str) -> list[LinkedIdentity]:
        return await self.durable.list_linked_identities(tenant_id, subject)

    async def save_upstream_token(self, token: UpstreamToken) -> None:
        await self.durable.save_upstream_token(token)

    async def get_upstream_token(
        self, tenant_id: str, grant_id: str, provider: str
    ) -> UpstreamToken | None:
        return await self.durable.get_upstream_token(tenant_id, grant_id, provider)

    async def delete_upstream_tokens(self, tenant_id: str, grant_id: str) -> int:
        return await self.durable.delete_upstream_tokens(tenant_id, grant_id)
