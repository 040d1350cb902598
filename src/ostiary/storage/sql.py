"""SQL storage backend for SQLite and PostgreSQL (SQLAlchemy Core async; RFC 9700 §4.14).

One code path for both databases. The security-critical operations are single conditional
statements, so the database itself decides who wins a race, across tasks *and* processes:

* code consumption is ``UPDATE … SET consumed_at WHERE consumed_at IS NULL AND expires_at >
  now RETURNING …``; only when no row came back is the row read to say why;
* refresh rotation is the same kind of ``UPDATE`` (``rotated_at IS NULL``, recording the
  successor) followed, in the same transaction and only on success, by the ``INSERT`` of the
  new token; a loser reads, in that transaction, the winner's row and successor;
* ``revoke_grant`` and the deletions of clients and users cascade in one transaction.

On PostgreSQL, single statements run in autocommit; multi-statement operations use a READ
COMMITTED transaction, where a concurrent ``UPDATE`` re-checks its ``WHERE`` against the
winner's committed row. SQLite serialises writers (``BEGIN IMMEDIATE``) and, in WAL mode,
lets readers proceed meanwhile. How each database is reached (asyncpg; one SQLite
connection on the event loop) is ``storage/engines.py``; the statements themselves are
built once, in ``storage/statements.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Executable, Table, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

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
from ostiary.errors import ConfigurationError, OAuthError, StorageError
from ostiary.storage import schema as t
from ostiary.storage import statements as q
from ostiary.storage.engines import Engine, PostgresEngine, Runner, SqliteEngine
from ostiary.storage.rules import consume_status, rotation_status

M = TypeVar("M")
Params = dict[str, Any]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_TUPLE_FIELDS = frozenset({"redirect_uris", "grant_types", "response_types", "scopes"})


def async_url(url: str) -> str:
    """Translate a settings-style URL to its async-driver form.

    ``sqlite:///rel.db`` and ``sqlite:////abs.db`` become ``sqlite+aiosqlite``;
    ``postgresql://`` and ``postgres://`` become ``postgresql+asyncpg``.

    Raises:
        ConfigurationError: for any other scheme, or an in-memory SQLite database (each
            pooled connection would see a different empty database; use ``memory://``).
    """
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError:
        raise ConfigurationError(f"storage.url {url!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError(
                f"storage.url {url!r}: in-memory SQLite is not supported; "
                "use memory:// or a file path such as sqlite:///./.ostiary/ostiary.db"
            )
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigurationError(
        f"storage.url {url!r}: unsupported scheme; expected sqlite:/// or postgresql://"
    )


def _check_sqlite_version() -> None:
    # RETURNING (single-use codes, rotation, the replay cache) arrived in SQLite 3.35.
    if sqlite3.sqlite_version_info < (3, 35):
        raise ConfigurationError(
            f"SQLite {sqlite3.sqlite_version} is too old: ostiary needs 3.35 or newer "
            "(for RETURNING); use a newer Python build or PostgreSQL"
        )


def _values(record: object) -> Params:
    return {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]


def _key(**key: object) -> Params:
    """Bind values for the ``k_<column>`` key parameters of ``storage/statements.py``."""
    return {f"k_{name}": value for name, value in key.items()}


def _model(model: Callable[..., M], columns: Iterable[tuple[Any, Any]]) -> M:
    """A record from (column, value) pairs; JSON lists become the records' tuples."""
    return model(**{k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in columns})


def _record(model: Callable[..., M], row: Row[Any]) -> M:
    return _model(model, row._mapping.items())


def _first(result: Any) -> Row[Any] | None:
    return result.first()  # type: ignore[no-any-return]


def _every(result: Any) -> Sequence[Row[Any]]:
    return result.all()  # type: ignore[no-any-return]


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _consent(row: Row[Any]) -> Consent:
    consent = _record(Consent, row)
    if consent.resource == "":  # '' stands for "no resource" (a key column cannot be NULL)
        return Consent(**{**_values(consent), "resource": None})
    return consent


class SqlStorage:
    """:class:`~ostiary.core.storage.Storage` on SQLite or PostgreSQL.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or
            ``postgresql://user@host:port/db`` (see :func:`async_url`).
        pool_size: PostgreSQL connections kept open (as many again may be opened under
            load). SQLite uses one connection on the event loop (``storage/engines.py``).

    Example:
        >>> storage = SqlStorage("sqlite:///./.ostiary/ostiary.db")  # doctest: +SKIP
        >>> await storage.initialize()  # doctest: +SKIP
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self._engine: Engine
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._sqlite:
            _check_sqlite_version()
            self._engine = SqliteEngine(parsed.database or "")
            self._up = q.upserts(sqlite.insert)
        else:
            self._engine = PostgresEngine(self.url, pool_size=pool_size)
            self._up = q.upserts(postgresql.insert)
        #: PostgreSQL: a won rotation's four writes in one statement (None on SQLite).
        self._rotation_writes = None if self._sqlite else q.rotation_writes(postgresql.insert)

    # -- plumbing ----------------------------------------------------------------------------

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Runner]:
        """A write transaction; errors become StorageError."""
        return self._engine.transaction()

    async def _one(self, stmt: Executable, params: Params) -> Row[Any] | None:
        return await self._engine.run(stmt, params, _first)

    async def _all(self, stmt: Executable, params: Params) -> Sequence[Row[Any]]:
        return await self._engine.run(stmt, params, _every)

    async def _count(self, stmt: Executable, params: Params) -> int:
        return await self._engine.run(stmt, params, _rowcount)

    async def _get(self, table: Table, model: Callable[..., M], **key: object) -> M | None:
        row = await self._one(q.GET[table], _key(**key))
        return None if row is None else _record(model, row)

    async def _save(self, table: Table, values: Params) -> None:
        await self._count(self._up.save[table], values)

    # -- lifecycle ---------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Bring the schema to the newest Alembic revision; idempotent and race-safe.

        PostgreSQL takes a transaction-scoped advisory lock first; SQLite takes the write
        lock with ``BEGIN IMMEDIATE``. Either way a second process waits, then finds the
        schema current and does nothing.
        """
        try:
            await self._engine.migrate(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"schema migration failed: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._engine.close()

    async def healthy(self) -> bool:
        try:
            return await self._one(text("SELECT 1"), {}) is not None
        except StorageError:
            return False

    # -- clients -----------------------------------------------------------------------------

    async def save_client(self, client: Client) -> None:
        await self._save(t.clients, _values(client))

    async def get_client(self, tenant_id: str, client_id: str) -> Client | None:
        return await self._get(t.clients, Client, tenant_id=tenant_id, client_id=client_id)

    async def delete_client(self, tenant_id: str, client_id: str) -> bool:
        async with self._tx() as conn:
            gone = await conn.execute(
                q.DELETE[t.clients], _key(tenant_id=tenant_id, client_id=client_id)
            )
            await _revoke_grants(conn, tenant_id, t.grants.c.client_id == client_id)
        return gone.rowcount == 1

    async def list_clients(self, tenant_id: str) -> list[Client]:
        rows = await self._all(q.LIST[t.clients], _key(tenant_id=tenant_id))
        # Sorted here, not by ORDER BY: a database collation may not be code-point order.
        return sorted((_record(Client, row) for row in rows), key=lambda c: c.client_id)

    # -- users -------------------------------------------------------------------------------

    async def save_user(self, user: User) -> None:
        try:
            await self._save(t.users, _values(user))
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # uq_users_username
                raise StorageError(f"username {user.username!r} is taken") from exc.__cause__
            raise

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        return await self._get(t.users, User, tenant_id=tenant_id, user_id=user_id)

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None:
        row = await self._one(q.GET_USER_BY_NAME, _key(tenant_id=tenant_id, username=username))
        return None if row is None else _record(User, row)

    async def list_users(self, tenant_id: str) -> list[User]:
        rows = await self._all(q.LIST[t.users], _key(tenant_id=tenant_id))
        return sorted((_record(User, row) for row in rows), key=lambda u: u.username)

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        async with self._tx() as conn:
            gone = await conn.execute(q.DELETE[t.users], _key(tenant_id=tenant_id, user_id=user_id))
            await _revoke_grants(conn, tenant_id, t.grants.c.subject == user_id)
            await conn.execute(q.DELETE_LINKS_OF, _key(tenant_id=tenant_id, subject=user_id))
        return gone.rowcount == 1

    # -- grants ------------------------------------------------------------------------------

    async def save_grant(self, grant: Grant) -> None:
        await self._save(t.grants, _values(grant))

    async def open_grant(
        self,
        grant: Grant,
        *,
        code: AuthorizationCode | None = None,
        access_token: AccessTokenRecord | None = None,
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(self._up.save[t.grants], _values(grant))
            if code is not None:
                await conn.execute(self._up.save[t.authorization_codes], _values(code))
            if access_token is not None:
                await conn.execute(self._up.save[t.access_tokens], _values(access_token))

    async def get_grant(self, tenant_id: str, grant_id: str) -> Grant | None:
        return await self._get(t.grants, Grant, tenant_id=tenant_id, grant_id=grant_id)

    async def list_grants(self, tenant_id: str, subject: str) -> list[Grant]:
        rows = await self._all(q.LIST_LIVE_GRANTS, _key(tenant_id=tenant_id, subject=subject))
        found = (_record(Grant, row) for row in rows)
        return sorted(found, key=lambda g: (g.created_at, g.grant_id), reverse=True)

    async def list_client_grants(self, tenant_id: str, client_id: str) -> list[Grant]:
        key = _key(tenant_id=tenant_id, client_id=client_id)
        found = (_record(Grant, row) for row in await self._all(q.LIST_LIVE_CLIENT_GRANTS, key))
        return sorted(found, key=lambda g: (g.created_at, g.grant_id), reverse=True)

    async def touch_grant(self, tenant_id: str, grant_id: str, now: int) -> None:
        await self._count(
            q.TOUCH_GRANT, {**_key(tenant_id=tenant_id, grant_id=grant_id), "now": now}
        )

    async def revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        async with self._tx() as conn:
            return await _revoke_grant_in(conn, tenant_id, grant_id, now)

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        await self._save(t.authorization_codes, _values(code))

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        key = _key(tenant_id=tenant_id, code_hash=code_hash)
        won = await self._one(q.CONSUME_CODE, {**key, "now": now})
        if won is not None:
            return ConsumeResult(ConsumeStatus.OK, _record(AuthorizationCode, won))
        # Lost (or nothing to win): the row can only have moved towards consumed or gone.
        return _why_not_consumed(await self._one(q.GET[t.authorization_codes], key), now)

    async def redeem_authorization_code(
        self, tenant_id: str, code_hash: str, now: int, plan: CodePlan
    ) -> ConsumeResult:
        key = _key(tenant_id=tenant_id, code_hash=code_hash)
        read = q.CODE_WITH_GRANT if self._sqlite else q.LOCKED_CODE_WITH_GRANT
        async with self._tx() as conn:
            # Code and grant in one read (PostgreSQL: the grant row locked first, the order
            # revoke_grant takes), then the decisive conditional UPDATE.
            row = (await conn.execute(read, key)).first()
            grant = None if row is None else _joined_grant(row)
            won = (await conn.execute(q.CONSUME_CODE, {**key, "now": now})).first()
            if won is None:
                lost = (await conn.execute(q.GET[t.authorization_codes], key)).first()
                result = _why_not_consumed(lost, now)
                if result.status is ConsumeStatus.REPLAYED and result.record is not None:
                    await _revoke_grant_in(conn, tenant_id, result.record.grant_id, now)
                return result
            code = _record(AuthorizationCode, won)
            refused = await self._book_code(conn, code, grant, now, plan)
        if refused is not None:
            raise refused  # after the commit: the code stays spent, the grant revoked
        return ConsumeResult(ConsumeStatus.OK, code)

    async def book_redeemed_code(self, code: AuthorizationCode, now: int, plan: CodePlan) -> None:
        read = q.GET[t.grants] if self._sqlite else q.LOCKED_GRANT
        async with self._tx() as conn:
            row = (await conn.execute(read, _grant_key(code))).first()
            grant = None if row is None else _record(Grant, row)
            refused = await self._book_code(conn, code, grant, now, plan)
        if refused is not None:
            raise refused

    async def _book_code(
        self, conn: Runner, code: AuthorizationCode, grant: Grant | None, now: int, plan: CodePlan
    ) -> OAuthError | None:
        """Run ``plan`` and store what it issues; on a refusal revoke the grant instead and
        hand the error back, to be raised once the transaction has committed."""
        try:
            issued = plan(code, grant)
        except OAuthError as refused:
            await _revoke_grant_in(conn, code.tenant_id, code.grant_id, now)
            return refused
        await conn.execute(self._up.save[t.access_tokens], _values(issued.access_token))
        if issued.refresh_token is not None:
            await conn.execute(self._up.save[t.refresh_tokens], _values(issued.refresh_token))
        return None

    # -- refresh tokens ----------------------------------------------------------------------

    async def save_refresh_token(self, token: RefreshToken) -> None:
        await self._save(t.refresh_tokens, _values(token))

    async def get_refresh_token(self, tenant_id: str, token_hash: str) -> RefreshToken | None:
        return await self._get(
            t.refresh_tokens, RefreshToken, tenant_id=tenant_id, token_hash=token_hash
        )

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
        key = _key(tenant_id=tenant_id, token_hash=token_hash)
        read = q.REFRESH_WITH_GRANT if self._sqlite else q.LOCKED_REFRESH_WITH_GRANT
        async with self._tx() as conn:
            # PostgreSQL: lock order grant → token, as in revoke_grant: a revocation running
            # now either finishes first (we then see the old token revoked) or waits for our
            # commit (its cascade then sees the new token). The grant lock is exclusive (FOR
            # NO KEY UPDATE, what touching the grant takes), so concurrent refreshes of one
            # grant queue here. SQLite: BEGIN IMMEDIATE already holds the one write lock.
            row = (await conn.execute(read, key)).first()
            if row is None:  # unknown, or its grant is gone
                row = (await conn.execute(q.GET[t.refresh_tokens], key)).first()
                if row is None:
                    return RotateResult(RotateStatus.NOT_FOUND)
                current, grant = _record(RefreshToken, row), None
            else:
                current, grant = _own(RefreshToken, row), _joined_grant(row)
            issued = plan(current, grant)  # may refuse: the transaction then changes nothing
            new = issued.refresh_token
            assert new is not None, "a rotation plan issues the successor"
            successor = {
                "successor_hash": new.token_hash,
                "sealed_successor": issued.sealed_successor if grace_seconds > 0 else None,
            }
            won = (await conn.execute(q.ROTATE, {**key, "now": now, **successor})).first()
            if won is not None:
                old = _record(RefreshToken, won)
                await self._rotated(conn, key, old, new, now, issued.access_token)
                return RotateResult(RotateStatus.OK, old)
            # Lost (on PostgreSQL a concurrent refresh of this token committed between our
            # read and our UPDATE, which re-checked its WHERE against that row). These reads
            # (a fresh snapshot each, READ COMMITTED) see its row and the successor.
            row = (await conn.execute(q.GET[t.refresh_tokens], key)).first()
            if row is None:
                return RotateResult(RotateStatus.NOT_FOUND)
            old = _record(RefreshToken, row)
            following = None
            if old.successor_hash is not None:
                next_key = _key(tenant_id=tenant_id, token_hash=old.successor_hash)
                found = (await conn.execute(q.GET[t.refresh_tokens], next_key)).first()
                following = None if found is None else _record(RefreshToken, found)
            status = rotation_status(old, now, grace_seconds, following)
            if status is RotateStatus.SUPERSEDED:
                await self._used(conn, old, now, issued.access_token)
                return RotateResult(status, old, following)
        if status is RotateStatus.OK:  # inserted after our UPDATE looked: unknown then
            return RotateResult(RotateStatus.NOT_FOUND)
        return RotateResult(status, old)

    async def _rotated(
        self,
        conn: Runner,
        key: Params,
        old: RefreshToken,
        new: RefreshToken,
        now: int,
        access_token: AccessTokenRecord | None,
    ) -> None:
        """After a won rotation: forget the previous token's sealed successor, store the new
        token, touch the grant, book the access token (PostgreSQL: in one statement)."""
        forget = {**key, "k_grant_id": old.grant_id}
        if self._rotation_writes is not None and access_token is not None:
            successor = _prefixed(q.SUCCESSOR_PREFIX, new)
            booked = _prefixed(q.ACCESS_PREFIX, access_token)
            await conn.execute(self._rotation_writes, {**forget, "now": now, **successor, **booked})
            return
        await conn.execute(q.FORGET_PREVIOUS, forget)
        await conn.execute(self._up.insert_refresh, _values(new))
        await self._used(conn, old, now, access_token)

    async def _used(
        self, conn: Runner, token: RefreshToken, now: int, access_token: AccessTokenRecord | None
    ) -> None:
        """A refresh went through: touch the grant and book the access token, in its
        transaction."""
        touch = {**_key(tenant_id=token.tenant_id, grant_id=token.grant_id), "now": now}
        await conn.execute(q.TOUCH_GRANT, touch)
        if access_token is not None:
            await conn.execute(self._up.save[t.access_tokens], _values(access_token))

    async def revoke_refresh_token(self, tenant_id: str, token_hash: str, now: int) -> bool:
        params = {**_key(tenant_id=tenant_id, token_hash=token_hash), "now": now}
        return await self._count(q.REVOKE_REFRESH, params) == 1

    # -- access-token records ----------------------------------------------------------------

    async def save_access_token(self, record: AccessTokenRecord) -> None:
        await self._save(t.access_tokens, _values(record))

    async def get_access_token(self, tenant_id: str, jti: str) -> AccessTokenRecord | None:
        return await self._get(t.access_tokens, AccessTokenRecord, tenant_id=tenant_id, jti=jti)

    async def revoke_access_token(self, tenant_id: str, jti: str, now: int) -> bool:
        params = {**_key(tenant_id=tenant_id, jti=jti), "now": now}
        return await self._count(q.REVOKE_ACCESS, params) == 1

    # -- consents ----------------------------------------------------------------------------

    async def save_consent(self, consent: Consent) -> None:
        await self._save(t.consents, {**_values(consent), "resource": consent.resource or ""})

    async def get_consent(
        self, tenant_id: str, subject: str, client_id: str, resource: str | None
    ) -> Consent | None:
        key = _key(tenant_id=tenant_id, subject=subject, client_id=client_id)
        row = await self._one(q.GET[t.consents], {**key, "k_resource": resource or ""})
        return None if row is None else _consent(row)

    async def delete_consents(self, tenant_id: str, subject: str, client_id: str) -> int:
        key = _key(tenant_id=tenant_id, subject=subject, client_id=client_id)
        return await self._count(q.DELETE_CONSENTS, key)

    # -- signing keys ------------------------------------------------------------------------

    async def save_signing_key(self, key: SigningKey) -> None:
        await self._save(t.signing_keys, _values(key))

    async def list_signing_keys(self, tenant_id: str) -> list[SigningKey]:
        rows = await self._all(q.LIST[t.signing_keys], _key(tenant_id=tenant_id))
        found = (_record(SigningKey, row) for row in rows)
        return sorted(found, key=lambda k: (k.created_at, k.kid), reverse=True)

    # -- interactions and browser sessions ---------------------------------------------------

    async def save_interaction(self, interaction: Interaction) -> None:
        await self._save(t.interactions, _values(interaction))

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        key = _key(tenant_id=tenant_id, interaction_id=interaction_id)
        row = await self._one(q.GET_LIVE[t.interactions], {**key, "now": now})
        return None if row is None else _record(Interaction, row)

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        key = _key(tenant_id=tenant_id, interaction_id=interaction_id)
        return await self._count(q.DELETE[t.interactions], key) == 1

    async def save_session(self, session: BrowserSession) -> None:
        await self._save(t.browser_sessions, _values(session))

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None:
        key = _key(tenant_id=tenant_id, session_hash=session_hash)
        row = await self._one(q.GET_LIVE[t.browser_sessions], {**key, "now": now})
        return None if row is None else _record(BrowserSession, row)

    async def delete_session(self, tenant_id: str, session_hash: str) -> None:
        key = _key(tenant_id=tenant_id, session_hash=session_hash)
        await self._count(q.DELETE[t.browser_sessions], key)

    # -- replay cache and rate limits --------------------------------------------------------

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        params = {"tenant_id": tenant_id, "key": key, "expires_at": expires_at, "now": now}
        return await self._one(self._up.remember_jti, params) is not None

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        start = now - now % window_seconds
        params = {
            "tenant_id": tenant_id,
            "bucket": bucket,
            "window_start": start,
            "expires_at": start + window_seconds,
        }
        row = await self._one(self._up.hit, params)
        assert row is not None  # an upsert always returns its row
        return int(row[0])

    # -- notes and API usage (demo MCP server) ----------------------------------------------

    async def save_note(self, note: Note) -> None:
        await self._save(t.notes, _values(note))

    async def get_note(self, tenant_id: str, subject: str, note_id: str) -> Note | None:
        return await self._get(t.notes, Note, tenant_id=tenant_id, subject=subject, note_id=note_id)

    async def list_notes(self, tenant_id: str, subject: str) -> list[Note]:
        rows = await self._all(q.LIST_NOTES, _key(tenant_id=tenant_id, subject=subject))
        return sorted((_record(Note, row) for row in rows), key=lambda n: (n.created_at, n.note_id))

    async def delete_note(self, tenant_id: str, subject: str, note_id: str) -> bool:
        key = _key(tenant_id=tenant_id, subject=subject, note_id=note_id)
        return await self._count(q.DELETE[t.notes], key) == 1

    async def record_usage(self, tenant_id: str, subject: str, name: str, now: int) -> int:
        params = {"tenant_id": tenant_id, "subject": subject, "name": name, "now": now}
        row = await self._one(self._up.record_usage, params)
        assert row is not None  # an upsert always returns its row
        return int(row[0])

    async def get_usage(self, tenant_id: str, subject: str) -> dict[str, int]:
        rows = await self._all(q.LIST_USAGE, _key(tenant_id=tenant_id, subject=subject))
        usage = (row._mapping for row in rows)
        return dict(sorted((str(u["name"]), int(u["count"])) for u in usage))

    # -- federation: linked identities and upstream tokens -----------------------------------

    async def save_linked_identity(self, identity: LinkedIdentity) -> None:
        await self._save(t.linked_identities, _values(identity))

    async def get_linked_identity(
        self, tenant_id: str, provider: str, upstream_subject: str
    ) -> LinkedIdentity | None:
        return await self._get(
            t.linked_identities,
            LinkedIdentity,
            tenant_id=tenant_id,
            provider=provider,
            upstream_subject=upstream_subject,
        )

    async def list_linked_identities(self, tenant_id: str, subject: str) -> list[LinkedIdentity]:
        rows = await self._all(q.LIST_LINKS, _key(tenant_id=tenant_id, subject=subject))
        found = (_record(LinkedIdentity, row) for row in rows)
        return sorted(found, key=lambda i: (i.created_at, i.provider, i.upstream_subject))

    async def save_upstream_token(self, token: UpstreamToken) -> None:
        await self._save(t.upstream_tokens, _values(token))

    async def get_upstream_token(
        self, tenant_id: str, grant_id: str, provider: str
    ) -> UpstreamToken | None:
        return await self._get(
            t.upstream_tokens,
            UpstreamToken,
            tenant_id=tenant_id,
            grant_id=grant_id,
            provider=provider,
        )

    async def delete_upstream_tokens(self, tenant_id: str, grant_id: str) -> int:
        return await self._count(q.DELETE_UPSTREAM, _key(tenant_id=tenant_id, grant_id=grant_id))

    # -- housekeeping ------------------------------------------------------------------------

    async def stats(self, tenant_id: str, now: int) -> Stats:
        row = await self._one(q.STATS, {**_key(tenant_id=tenant_id), "now": now})
        assert row is not None
        return Stats(*(int(n) for n in row))

    async def purge_expired(self, now: int) -> int:
        if self._sqlite:
            return await self._purge_in_batches(now)

        def purge(conn: Connection) -> int:
            # PostgreSQL locks rows, not the database: one transaction blocks no other writer.
            conn.execute(q.LOCK_EXPIRED_GRANTS, {"now": now})
            removed = sum(conn.execute(statement, {"now": now}).rowcount for statement in q.PURGE)
            conn.execute(q.FORGET_OLD_SUCCESSORS, {"now": now})  # cleared, not counted
            return removed

        return await self._engine.bulk(purge)

    async def _purge_in_batches(self, now: int) -> int:
        """SQLite: at most ``PURGE_BATCH`` rows per write transaction, in PURGE's order, with
        the event loop free between two (writers on it take the database's one write lock
        there); small transactions also let WAL checkpoints keep the log short."""
        removed = 0
        for statement in q.PURGE_BATCHES:

            def batch(conn: Connection, statement: Executable = statement) -> int:
                return int(conn.execute(statement, {"now": now}).rowcount)

            while True:
                deleted = await self._engine.bulk(batch)
                removed += deleted
                await asyncio.sleep(0)
                if deleted < q.PURGE_BATCH:
                    break
        await self._engine.bulk(lambda conn: conn.execute(q.FORGET_OLD_SUCCESSORS, {"now": now}))
        return removed


def _own(model: Callable[..., M], row: Row[Any]) -> M:
    """The record part of a ``*_WITH_GRANT`` row."""
    items = row._mapping.items()
    return _model(model, ((k, v) for k, v in items if not k.startswith(q.GRANT_PREFIX)))


def _joined_grant(row: Row[Any]) -> Grant:
    """The grant part of a ``*_WITH_GRANT`` row."""
    cut, items = len(q.GRANT_PREFIX), row._mapping.items()
    return _model(Grant, ((k[cut:], v) for k, v in items if k.startswith(q.GRANT_PREFIX)))


def _prefixed(prefix: str, record: object) -> Params:
    """A record's values under prefixed bind names (``statements.rotation_writes``)."""
    return {f"{prefix}{name}": value for name, value in _values(record).items()}


def _grant_key(code: AuthorizationCode) -> Params:
    return _key(tenant_id=code.tenant_id, grant_id=code.grant_id)


def _why_not_consumed(row: Row[Any] | None, now: int) -> ConsumeResult:
    """The status of a code whose consuming UPDATE matched nothing (``row``: the code now)."""
    if row is None:
        return ConsumeResult(ConsumeStatus.NOT_FOUND)
    code = _record(AuthorizationCode, row)
    status = consume_status(code, now)
    if status is ConsumeStatus.OK:  # inserted after our UPDATE looked: unknown then
        return ConsumeResult(ConsumeStatus.NOT_FOUND)
    return ConsumeResult(status, code)


async def _revoke_grant_in(conn: Runner, tenant_id: str, grant_id: str, now: int) -> bool:
    """Revoke the grant and cascade, in the caller's transaction; True if it was live."""
    params = {**_key(tenant_id=tenant_id, grant_id=grant_id), "now": now}
    revoked = await conn.execute(q.REVOKE_GRANT, params)
    # Even when the grant was already revoked or is gone: no stray token survives.
    for cascade in q.CASCADE:
        await conn.execute(cascade, params)
    await conn.execute(q.DELETE_UPSTREAM, params)
    return bool(revoked.rowcount == 1)


async def _revoke_grants(conn: Runner, tenant_id: str, which: ColumnElement[bool]) -> None:
    """Revoke, with the cascade, every grant of the tenant that ``which`` selects.

    Rare (client or user deletion), so built per call. The protocol gives deletions no
    clock: the wall clock stamps the revocation.
    """
    now = int(time.time())
    g = t.grants.c
    await conn.execute(
        update(t.grants)
        .where(g.tenant_id == tenant_id, which, g.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ids = select(g.grant_id).where(g.tenant_id == tenant_id, which).scalar_subquery()
    for table, column in (
        (t.authorization_codes, "consumed_at"),
        (t.refresh_tokens, "revoked_at"),
        (t.access_tokens, "revoked_at"),
    ):
        # A revoked refresh token keeps no sealed successor (as in q.CASCADE).
        extra = {"sealed_successor": None} if table is t.refresh_tokens else {}
        await conn.execute(
            update(table)
            .where(
                table.c.tenant_id == tenant_id, table.c.grant_id.in_(ids), table.c[column].is_(None)
            )
            .values({column: now, **extra})
        )
    up = t.upstream_tokens.c
    await conn.execute(
        delete(t.upstream_tokens).where(up.tenant_id == tenant_id, up.grant_id.in_(ids))
    )


def _upgrade(connection: Connection) -> None:
    """Run ``alembic upgrade head`` on an open connection (no alembic.ini on disk)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
