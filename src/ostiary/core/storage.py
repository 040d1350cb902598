"""The storage protocol every backend implements (OAuth 2.1 §4.1.2, §4.3.1; RFC 9700 §4.14).

A port of the core: the core says here what it needs persisted, and the backends in
``ostiary.storage`` implement it, so the core never imports a backend or a driver.

The security-critical semantics are part of the contract and are checked by
``tests/contract/storage`` on every backend:

* ``consume_authorization_code`` is atomic and single-use, even across processes.
* ``rotate_refresh_token`` is atomic and never forks a grant: every grant has at most one
  live (unrotated, unrevoked) refresh token. The immediately previous token presented again
  within the grace window is ``SUPERSEDED`` (the caller answers with the successor already
  issued); any other second presentation is ``REUSED`` (the caller revokes the grant).
* ``revoke_grant`` cascades to every code, refresh token and access-token record of the grant
  and deletes its upstream tokens.
* Every method is scoped to a tenant; one tenant never sees another's records.
* Secrets arrive already hashed; a backend never sees a raw code, token or secret. The one
  raw value kept, a rotated token's successor, arrives sealed by the core and is opaque here.
"""

from __future__ import annotations

from typing import Protocol

from ostiary.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    BrowserSession,
    Client,
    CodePlan,
    Consent,
    ConsumeResult,
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


class ClientStore(Protocol):
    async def save_client(self, client: Client) -> None:
        """Insert or replace a client (keyed by tenant and client_id)."""

    async def get_client(self, tenant_id: str, client_id: str) -> Client | None: ...

    async def delete_client(self, tenant_id: str, client_id: str) -> bool:
        """Delete a client and revoke every grant issued to it. True if it existed."""

    async def list_clients(self, tenant_id: str) -> list[Client]: ...


class UserStore(Protocol):
    async def save_user(self, user: User) -> None:
        """Insert or replace a user; usernames are unique per tenant (StorageError if taken)."""

    async def get_user(self, tenant_id: str, user_id: str) -> User | None: ...

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None: ...

    async def list_users(self, tenant_id: str) -> list[User]: ...

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        """Delete a user, revoke all of their grants and unlink their upstream identities.

        True if it existed.
        """


class GrantStore(Protocol):
    async def save_grant(self, grant: Grant) -> None: ...

    async def open_grant(
        self,
        grant: Grant,
        *,
        code: AuthorizationCode | None = None,
        access_token: AccessTokenRecord | None = None,
    ) -> None:
        """Store a new grant with what it was opened for, in one transaction: its first
        authorization code (an approval), or the access token a direct grant issues
        (client_credentials, jwt-bearer). A store that keeps codes elsewhere (the Redis
        tier) saves the code there after the durable transaction."""

    async def get_grant(self, tenant_id: str, grant_id: str) -> Grant | None: ...

    async def list_grants(self, tenant_id: str, subject: str) -> list[Grant]:
        """Live (unrevoked) grants of a subject, newest first."""

    async def list_client_grants(self, tenant_id: str, client_id: str) -> list[Grant]:
        """Live (unrevoked) grants to a client, newest first (the operator console)."""

    async def touch_grant(self, tenant_id: str, grant_id: str, now: int) -> None:
        """Record ``last_used_at``."""

    async def revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        """Revoke the grant and, in the same transaction, its codes and tokens.

        Upstream tokens kept for the grant are deleted with it, and the sealed successors
        of its refresh tokens are forgotten.

        Returns True if the grant existed and was live.
        """


class CodeStore(Protocol):
    async def save_authorization_code(self, code: AuthorizationCode) -> None: ...

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        """Mark the code consumed, atomically; exactly one concurrent caller gets OK.

        A code already consumed yields REPLAYED with the record (so its grant can be revoked),
        an expired one EXPIRED, an unknown one NOT_FOUND. Consumed codes are kept until
        they expire so a replay can still be recognised.
        """

    async def redeem_authorization_code(
        self, tenant_id: str, code_hash: str, now: int, plan: CodePlan
    ) -> ConsumeResult:
        """Consume the code and book what ``plan`` mints for it: one transaction.

        The code and its grant are read, the code consumed (as
        :meth:`consume_authorization_code`, with the same statuses), ``plan(code, grant)``
        called, and its :class:`IssuedTokens` stored, before one commit. When ``plan``
        raises an :class:`~ostiary.errors.OAuthError` the code stays consumed, the grant is
        revoked in that same transaction, and the error propagates. On REPLAYED the grant is
        revoked in that transaction too (OAuth 2.1 §4.1.2); ``plan`` is called only on OK.
        """

    async def book_redeemed_code(self, code: AuthorizationCode, now: int, plan: CodePlan) -> None:
        """The second half of :meth:`redeem_authorization_code`, for a code consumed in
        another store (the Redis tier): read the grant, call ``plan``, store what it
        returns, in one transaction; on an OAuthError from ``plan``, revoke the grant."""


class RefreshTokenStore(Protocol):
    async def save_refresh_token(self, token: RefreshToken) -> None:
        """Store the token; it is stored already revoked if its grant is revoked."""

    async def get_refresh_token(self, tenant_id: str, token_hash: str) -> RefreshToken | None: ...

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
        """Atomically retire ``old_hash`` for ``new``, or say why not (RFC 9700 §4.14.2).

        On OK and SUPERSEDED the same transaction also marks the grant used (``last_used_at
        = now``) and books ``access_token``, the access token the caller will answer with:
        one refresh is one transaction.

        OK when the old token is live and unrotated: it gets ``rotated_at = now``,
        ``successor_hash = new.token_hash`` and ``sealed_successor`` (the raw ``new`` sealed
        by the caller; kept only when ``grace_seconds > 0``), and ``new`` is stored. Exactly
        one of N concurrent callers, in any number of processes, gets OK. The token this
        one replaced loses its own sealed successor in the same step: only the immediately
        previous token of a grant keeps one.

        SUPERSEDED, with ``successor`` set, when the old token is the immediately previous
        one (see ``rules.rotation_status``): rotated no more than ``grace_seconds`` ago with
        a sealed successor that is still unrotated and unrevoked. Every loser of a race
        gets this, with the winner's successor. REUSED for any other rotated token (the
        store does NOT revoke: the caller does, so it can audit). EXPIRED when past its
        absolute or idle expiry, REVOKED when revoked, NOT_FOUND when unknown. ``new`` is
        stored only on OK.
        """

    async def refresh_grant(
        self, tenant_id: str, token_hash: str, now: int, grace_seconds: int, plan: RotationPlan
    ) -> RotateResult:
        """One refresh, reads and writes in one transaction (RFC 9700 §4.14.2).

        Reads the presented token and its grant (on PostgreSQL locking the grant row, as
        :meth:`revoke_grant` does, first), calls ``plan(token, grant)`` (which checks the
        client, key and scope and mints; an OAuthError from it changes nothing and
        propagates), then rotates exactly as :meth:`rotate_refresh_token` does with the
        planned successor, sealed successor and access token. ``plan`` is not called for an
        unknown token (NOT_FOUND).
        """

    async def revoke_refresh_token(self, tenant_id: str, token_hash: str, now: int) -> bool: ...


class AccessTokenStore(Protocol):
    async def save_access_token(self, record: AccessTokenRecord) -> None:
        """Book the token; it is stored already revoked if its grant is revoked."""

    async def get_access_token(self, tenant_id: str, jti: str) -> AccessTokenRecord | None: ...

    async def revoke_access_token(self, tenant_id: str, jti: str, now: int) -> bool: ...


class ConsentStore(Protocol):
    async def save_consent(self, consent: Consent) -> None:
        """Insert or replace the consent for (subject, client_id, resource)."""

    async def get_consent(
        self, tenant_id: str, subject: str, client_id: str, resource: str | None
    ) -> Consent | None: ...

    async def delete_consents(self, tenant_id: str, subject: str, client_id: str) -> int: ...


class KeyStore(Protocol):
    async def save_signing_key(self, key: SigningKey) -> None:
        """Insert or replace (by kid)."""

    async def list_signing_keys(self, tenant_id: str) -> list[SigningKey]:
        """All keys, newest first."""


class InteractionStore(Protocol):
    async def save_interaction(self, interaction: Interaction) -> None: ...

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        """The interaction if it exists and has not expired."""

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        """Remove it; True for exactly one concurrent caller (single use)."""

    async def save_session(self, session: BrowserSession) -> None: ...

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None: ...

    async def delete_session(self, tenant_id: str, session_hash: str) -> None: ...


class ReplayCache(Protocol):
    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        """Remember a one-time value until ``expires_at``. True the first time, else False."""


class RateLimiter(Protocol):
    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        """Count one event in the fixed window containing ``now``; return the count so far."""


class NoteStore(Protocol):
    """Per-user data of the demo MCP server (secure notes, API usage counters)."""

    async def save_note(self, note: Note) -> None:
        """Insert or replace by (tenant, subject, note_id): the owner is part of the key."""

    async def get_note(self, tenant_id: str, subject: str, note_id: str) -> Note | None:
        """The note only if it belongs to ``subject``."""

    async def list_notes(self, tenant_id: str, subject: str) -> list[Note]:
        """The subject's notes, oldest first."""

    async def delete_note(self, tenant_id: str, subject: str, note_id: str) -> bool:
        """Delete the subject's note; True for exactly one concurrent caller."""

    async def record_usage(self, tenant_id: str, subject: str, name: str, now: int) -> int:
        """Atomically add one call of ``name`` for ``subject``; returns the new count."""

    async def get_usage(self, tenant_id: str, subject: str) -> dict[str, int]:
        """Call counts per name for ``subject``, names in code-point order."""


class IdentityStore(Protocol):
    """Upstream identity links and upstream tokens (federation)."""

    async def save_linked_identity(self, identity: LinkedIdentity) -> None:
        """Insert or replace by (tenant, provider, upstream_subject)."""

    async def get_linked_identity(
        self, tenant_id: str, provider: str, upstream_subject: str
    ) -> LinkedIdentity | None: ...

    async def list_linked_identities(self, tenant_id: str, subject: str) -> list[LinkedIdentity]:
        """The subject's links, oldest first (then by provider and upstream subject)."""

    async def save_upstream_token(self, token: UpstreamToken) -> None:
        """Insert or replace by (tenant, grant_id, provider).

        Not stored when the grant is revoked; a save racing ``revoke_grant`` either lands
        before it (and is deleted by its cascade) or is dropped.
        """

    async def get_upstream_token(
        self, tenant_id: str, grant_id: str, provider: str
    ) -> UpstreamToken | None: ...

    async def delete_upstream_tokens(self, tenant_id: str, grant_id: str) -> int:
        """Remove every upstream token of a grant (``revoke_grant`` does this too)."""


class Storage(
    ClientStore,
    UserStore,
    GrantStore,
    CodeStore,
    RefreshTokenStore,
    AccessTokenStore,
    ConsentStore,
    KeyStore,
    InteractionStore,
    ReplayCache,
    RateLimiter,
    NoteStore,
    IdentityStore,
    Protocol,
):
    """Everything the authorization server persists, as one backend object."""

    async def initialize(self) -> None:
        """Create or migrate the schema. Idempotent; safe with several processes starting."""

    async def close(self) -> None: ...

    async def stats(self, tenant_id: str, now: int) -> Stats: ...

    async def purge_expired(self, now: int) -> int:
        """Delete expired records of every kind; returns how many went.

        Also forgets (without counting) every sealed successor of a token rotated more than
        ``MAX_REFRESH_GRACE_SECONDS`` ago: no grace window reaches back that far.

        Upstream tokens go with their expired grant, and those of a ``pending:`` grant id
        an hour after their last update (a login abandoned before consent). Notes, usage
        counters and linked identities never expire. Records a backend expires natively
        (Redis TTLs) are not counted.
        """

    async def healthy(self) -> bool:
        """A cheap round-trip to the backend."""
