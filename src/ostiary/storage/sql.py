"""SQL storage backend for SQLite and PostgreSQL (SQLAlchemy Core async; RFC 9700 §4.14).

One code path for both databases. The security-critical operations are single conditional
statements, so the database itself decides who wins a race, across tasks *and* processes:

* code consumption is ``UPDATE … SET consumed_at WHERE consumed_at IS NULL AND expires_at >
  now RETURNING …``; only when no row came back is the row read to say why;
* refresh rotation is the same kind of ``UPDATE`` (grace window in the ``WHERE``) followed,
  in the same transaction and only on success, by the ``INSERT`` of the new token;
* ``revoke_grant`` and the deletions of clients and users cascade in one transaction.

On PostgreSQL, single statements run in autocommit (one round-trip instead of three);
multi-statement operations use a READ COMMITTED transaction, where a concurrent ``UPDATE``
re-checks its ``WHERE`` against the winner's committed row. SQLite serialises writers; WAL
mode lets readers proceed meanwhile, and ``busy_timeout`` makes writers wait, not fail.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    Table,
    and_,
    case,
    delete,
    event,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from ostiary.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    BrowserSession,
    Client,
    Consent,
    ConsumeResult,
    ConsumeStatus,
    Grant,
    Interaction,
    RefreshToken,
    RotateResult,
    RotateStatus,
    SigningKey,
    Stats,
    User,
)
from ostiary.errors import ConfigurationError, StorageError
from ostiary.storage import schema as t
from ostiary.storage.rules import consume_status, rotation_status

M = TypeVar("M")

#: How long a SQLite writer waits for the lock before failing (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Key of the PostgreSQL advisory lock that serialises schema upgrades across processes.
MIGRATION_LOCK_KEY = 0x05717A27  # "ostiary" on a phone keypad, more or less
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


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        # NORMAL is durable across a process crash (kill -9) in WAL mode; only a power loss
        # can drop the last transactions, never corrupt the file.
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _values(record: object) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]


def _record(model: Callable[..., M], row: Row[Any] | Mapping[str, Any]) -> M:
    mapping = row._mapping if isinstance(row, Row) else row
    return model(**{k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in mapping.items()})


def _lock_grant(tenant_id: str, grant_id: str) -> Executable:
    """``SELECT … FOR SHARE`` of the grant row (PostgreSQL; SQLite serialises writers)."""
    g = t.grants.c
    return (
        select(literal(1))
        .select_from(t.grants)
        .where(g.tenant_id == tenant_id, g.grant_id == grant_id)
        .with_for_update(read=True)
    )


def _token_values(record: RefreshToken | AccessTokenRecord) -> dict[str, Any]:
    """Column values of a token; under a revoked grant it is stored already revoked.

    This closes the race between issuing a token (after consuming a code) and a concurrent
    ``revoke_grant`` triggered by a replay of that code: whichever commits first, the token
    ends up revoked. The subquery takes a share lock on the grant row, so a revocation in
    progress is waited for and then seen.
    """
    values = _values(record)
    if record.revoked_at is None:
        g = t.grants.c
        values["revoked_at"] = (
            select(g.revoked_at)
            .where(g.tenant_id == record.tenant_id, g.grant_id == record.grant_id)
            .with_for_update(read=True)
            .scalar_subquery()
        )
    return values


def _consent(row: Row[Any]) -> Consent:
    consent = _record(Consent, row)
    if consent.resource == "":
        return Consent(**{**_values(consent), "resource": None})
    return consent


class SqlStorage:
    """:class:`~ostiary.storage.base.Storage` on SQLite or PostgreSQL.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or
            ``postgresql://user@host:port/db`` (see :func:`async_url`).
        pool_size: Connections kept open to PostgreSQL (SQLite uses the same number).

    Example:
        >>> storage = SqlStorage("sqlite:///./.ostiary/ostiary.db")  # doctest: +SKIP
        >>> await storage.initialize()  # doctest: +SKIP
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._sqlite and parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._engine: AsyncEngine = create_async_engine(
            self.url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600
        )
        if self._sqlite:
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
            self._auto = self._engine
            self._insert: Callable[[Table], Any] = sqlite.insert
        else:
            self._auto = self._engine.execution_options(isolation_level="AUTOCOMMIT")
            self._insert = postgresql.insert

    # -- plumbing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _tx(self, *, single: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction (autocommit for one statement on PostgreSQL); errors → StorageError."""
        try:
            async with (self._auto if single else self._engine).begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"storage backend failed: {type(exc).__name__}") from exc

    async def _one(self, stmt: Executable) -> Row[Any] | None:
        async with self._tx(single=True) as conn:
            return (await conn.execute(stmt)).first()

    async def _all(self, stmt: Executable) -> Sequence[Row[Any]]:
        async with self._tx(single=True) as conn:
            return (await conn.execute(stmt)).all()

    async def _count(self, stmt: Executable) -> int:
        async with self._tx(single=True) as conn:
            return (await conn.execute(stmt)).rowcount

    def _upsert(self, table: Table, values: dict[str, Any]) -> Executable:
        stmt = self._insert(table).values(**values)
        keys = [c.name for c in table.primary_key.columns]
        changes = {name: stmt.excluded[name] for name in values if name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=changes)  # type: ignore[no-any-return]

    async def _save(self, table: Table, record: object) -> None:
        async with self._tx(single=True) as conn:
            await conn.execute(self._upsert(table, _values(record)))

    # -- lifecycle ---------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Bring the schema to the newest Alembic revision; idempotent and race-safe.

        PostgreSQL takes a transaction-scoped advisory lock first; SQLite takes the write
        lock with ``BEGIN IMMEDIATE``. Either way a second process waits, then finds the
        schema current and does nothing.
        """
        try:
            async with self._engine.connect() as conn:
                if self._sqlite:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(_upgrade)
                await conn.commit()
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"schema migration failed: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._engine.dispose()

    async def healthy(self) -> bool:
        try:
            return await self._one(select(literal(1))) is not None
        except StorageError:
            return False

    # -- clients -----------------------------------------------------------------------------

    async def save_client(self, client: Client) -> None:
        await self._save(t.clients, client)

    async def get_client(self, tenant_id: str, client_id: str) -> Client | None:
        c = t.clients.c
        row = await self._one(
            select(t.clients).where(c.tenant_id == tenant_id, c.client_id == client_id)
        )
        return None if row is None else _record(Client, row)

    async def delete_client(self, tenant_id: str, client_id: str) -> bool:
        c = t.clients.c
        async with self._tx() as conn:
            gone = await conn.execute(
                delete(t.clients).where(c.tenant_id == tenant_id, c.client_id == client_id)
            )
            await self._revoke_grants(conn, tenant_id, t.grants.c.client_id == client_id)
        return gone.rowcount == 1

    async def list_clients(self, tenant_id: str) -> list[Client]:
        c = t.clients.c
        rows = await self._all(select(t.clients).where(c.tenant_id == tenant_id))
        # Sorted here, not by ORDER BY: a database collation may not be code-point order.
        return sorted((_record(Client, row) for row in rows), key=lambda x: x.client_id)

    # -- users -------------------------------------------------------------------------------

    async def save_user(self, user: User) -> None:
        try:
            await self._save(t.users, user)
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # uq_users_username
                raise StorageError(f"username {user.username!r} is taken") from exc.__cause__
            raise

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        c = t.users.c
        row = await self._one(select(t.users).where(c.tenant_id == tenant_id, c.user_id == user_id))
        return None if row is None else _record(User, row)

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None:
        c = t.users.c
        row = await self._one(
            select(t.users).where(c.tenant_id == tenant_id, c.username == username)
        )
        return None if row is None else _record(User, row)

    async def list_users(self, tenant_id: str) -> list[User]:
        c = t.users.c
        rows = await self._all(select(t.users).where(c.tenant_id == tenant_id))
        return sorted((_record(User, row) for row in rows), key=lambda u: u.username)

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        c = t.users.c
        async with self._tx() as conn:
            gone = await conn.execute(
                delete(t.users).where(c.tenant_id == tenant_id, c.user_id == user_id)
            )
            await self._revoke_grants(conn, tenant_id, t.grants.c.subject == user_id)
        return gone.rowcount == 1

    # -- grants ------------------------------------------------------------------------------

    async def save_grant(self, grant: Grant) -> None:
        await self._save(t.grants, grant)

    async def get_grant(self, tenant_id: str, grant_id: str) -> Grant | None:
        c = t.grants.c
        row = await self._one(
            select(t.grants).where(c.tenant_id == tenant_id, c.grant_id == grant_id)
        )
        return None if row is None else _record(Grant, row)

    async def list_grants(self, tenant_id: str, subject: str) -> list[Grant]:
        c = t.grants.c
        rows = await self._all(
            select(t.grants).where(
                c.tenant_id == tenant_id, c.subject == subject, c.revoked_at.is_(None)
            )
        )
        found = (_record(Grant, row) for row in rows)
        return sorted(found, key=lambda g: (g.created_at, g.grant_id), reverse=True)

    async def touch_grant(self, tenant_id: str, grant_id: str, now: int) -> None:
        c = t.grants.c
        await self._count(
            update(t.grants)
            .where(c.tenant_id == tenant_id, c.grant_id == grant_id)
            .values(last_used_at=now)
        )

    async def revoke_grant(self, tenant_id: str, grant_id: str, now: int) -> bool:
        c = t.grants.c
        async with self._tx() as conn:
            revoked = await conn.execute(
                update(t.grants)
                .where(c.tenant_id == tenant_id, c.grant_id == grant_id, c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await self._cascade(conn, tenant_id, lambda table: table.c.grant_id == grant_id, now)
        return revoked.rowcount == 1

    async def _revoke_grants(
        self, conn: AsyncConnection, tenant_id: str, which: ColumnElement[bool]
    ) -> None:
        """Revoke every grant of the tenant that ``which`` selects, with the cascade."""
        now = int(time.time())  # the protocol gives deletions no clock
        g = t.grants.c
        await conn.execute(
            update(t.grants)
            .where(g.tenant_id == tenant_id, which, g.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        ids = select(g.grant_id).where(g.tenant_id == tenant_id, which).scalar_subquery()
        await self._cascade(conn, tenant_id, lambda table: table.c.grant_id.in_(ids), now)

    @staticmethod
    async def _cascade(
        conn: AsyncConnection,
        tenant_id: str,
        of_grant: Callable[[Table], ColumnElement[bool]],
        now: int,
    ) -> None:
        """Consume the codes and revoke the tokens that ``of_grant`` selects."""
        for table, column in (
            (t.authorization_codes, "consumed_at"),
            (t.refresh_tokens, "revoked_at"),
            (t.access_tokens, "revoked_at"),
        ):
            await conn.execute(
                update(table)
                .where(table.c.tenant_id == tenant_id, of_grant(table), table.c[column].is_(None))
                .values({column: now})
            )

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        await self._save(t.authorization_codes, code)

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        c = t.authorization_codes.c
        key = (c.tenant_id == tenant_id, c.code_hash == code_hash)
        won = await self._one(
            update(t.authorization_codes)
            .where(*key, c.consumed_at.is_(None), c.expires_at > now)
            .values(consumed_at=now)
            .returning(*t.authorization_codes.c)
        )
        if won is not None:
            return ConsumeResult(ConsumeStatus.OK, _record(AuthorizationCode, won))
        # Lost (or nothing to win): the row can only have moved towards consumed or gone.
        row = await self._one(select(t.authorization_codes).where(*key))
        if row is None:
            return ConsumeResult(ConsumeStatus.NOT_FOUND)
        code = _record(AuthorizationCode, row)
        status = consume_status(code, now)
        # OK here means the code was inserted after our UPDATE looked: it did not exist then.
        return ConsumeResult(
            ConsumeStatus.NOT_FOUND if status is ConsumeStatus.OK else status,
            None if status is ConsumeStatus.OK else code,
        )

    # -- refresh tokens ----------------------------------------------------------------------

    async def save_refresh_token(self, token: RefreshToken) -> None:
        async with self._tx(single=True) as conn:
            await conn.execute(self._upsert(t.refresh_tokens, _token_values(token)))

    async def get_refresh_token(self, tenant_id: str, token_hash: str) -> RefreshToken | None:
        c = t.refresh_tokens.c
        row = await self._one(
            select(t.refresh_tokens).where(c.tenant_id == tenant_id, c.token_hash == token_hash)
        )
        return None if row is None else _record(RefreshToken, row)

    async def rotate_refresh_token(
        self, tenant_id: str, old_hash: str, new: RefreshToken, now: int, grace_seconds: int
    ) -> RotateResult:
        c = t.refresh_tokens.c
        key = (c.tenant_id == tenant_id, c.token_hash == old_hash)
        unrotated: ColumnElement[bool] = c.rotated_at.is_(None)
        if grace_seconds > 0:  # grace 0: exactly one of N concurrent callers wins
            unrotated = or_(unrotated, c.rotated_at >= now - grace_seconds)
        async with self._tx() as conn:
            # Lock order grant → token, as in revoke_grant: a revocation running now either
            # finishes first (we then see the old token revoked) or waits for our commit
            # (its cascade then sees the new token).
            await conn.execute(_lock_grant(tenant_id, new.grant_id))
            won = (
                await conn.execute(
                    update(t.refresh_tokens)
                    .where(
                        *key,
                        c.revoked_at.is_(None),
                        c.expires_at > now,
                        c.idle_expires_at > now,
                        unrotated,
                    )
                    .values(rotated_at=func.coalesce(c.rotated_at, now))
                    .returning(*t.refresh_tokens.c)
                )
            ).first()
            if won is not None:
                await conn.execute(t.refresh_tokens.insert().values(**_token_values(new)))
                return RotateResult(RotateStatus.OK, _record(RefreshToken, won))
            row = (await conn.execute(select(t.refresh_tokens).where(*key))).first()
        if row is None:
            return RotateResult(RotateStatus.NOT_FOUND)
        old = _record(RefreshToken, row)
        status = rotation_status(old, now, grace_seconds)
        if status is RotateStatus.OK:  # inserted after our UPDATE looked
            return RotateResult(RotateStatus.NOT_FOUND)
        return RotateResult(status, old)

    async def revoke_refresh_token(self, tenant_id: str, token_hash: str, now: int) -> bool:
        c = t.refresh_tokens.c
        count = await self._count(
            update(t.refresh_tokens)
            .where(c.tenant_id == tenant_id, c.token_hash == token_hash, c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return count == 1

    # -- access-token records ----------------------------------------------------------------

    async def save_access_token(self, record: AccessTokenRecord) -> None:
        async with self._tx(single=True) as conn:
            await conn.execute(self._upsert(t.access_tokens, _token_values(record)))

    async def get_access_token(self, tenant_id: str, jti: str) -> AccessTokenRecord | None:
        c = t.access_tokens.c
        row = await self._one(select(t.access_tokens).where(c.tenant_id == tenant_id, c.jti == jti))
        return None if row is None else _record(AccessTokenRecord, row)

    async def revoke_access_token(self, tenant_id: str, jti: str, now: int) -> bool:
        c = t.access_tokens.c
        count = await self._count(
            update(t.access_tokens)
            .where(c.tenant_id == tenant_id, c.jti == jti, c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return count == 1

    # -- consents ----------------------------------------------------------------------------

    async def save_consent(self, consent: Consent) -> None:
        values = _values(consent)
        values["resource"] = consent.resource or ""
        async with self._tx(single=True) as conn:
            await conn.execute(self._upsert(t.consents, values))

    async def get_consent(
        self, tenant_id: str, subject: str, client_id: str, resource: str | None
    ) -> Consent | None:
        c = t.consents.c
        row = await self._one(
            select(t.consents).where(
                c.tenant_id == tenant_id,
                c.subject == subject,
                c.client_id == client_id,
                c.resource == (resource or ""),
            )
        )
        return None if row is None else _consent(row)

    async def delete_consents(self, tenant_id: str, subject: str, client_id: str) -> int:
        c = t.consents.c
        return await self._count(
            delete(t.consents).where(
                c.tenant_id == tenant_id, c.subject == subject, c.client_id == client_id
            )
        )

    # -- signing keys ------------------------------------------------------------------------

    async def save_signing_key(self, key: SigningKey) -> None:
        await self._save(t.signing_keys, key)

    async def list_signing_keys(self, tenant_id: str) -> list[SigningKey]:
        c = t.signing_keys.c
        rows = await self._all(select(t.signing_keys).where(c.tenant_id == tenant_id))
        found = (_record(SigningKey, row) for row in rows)
        return sorted(found, key=lambda k: (k.created_at, k.kid), reverse=True)

    # -- interactions and browser sessions ---------------------------------------------------

    async def save_interaction(self, interaction: Interaction) -> None:
        await self._save(t.interactions, interaction)

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        c = t.interactions.c
        row = await self._one(
            select(t.interactions).where(
                c.tenant_id == tenant_id, c.interaction_id == interaction_id, c.expires_at > now
            )
        )
        return None if row is None else _record(Interaction, row)

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        c = t.interactions.c
        count = await self._count(
            delete(t.interactions).where(
                c.tenant_id == tenant_id, c.interaction_id == interaction_id
            )
        )
        return count == 1

    async def save_session(self, session: BrowserSession) -> None:
        await self._save(t.browser_sessions, session)

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None:
        c = t.browser_sessions.c
        row = await self._one(
            select(t.browser_sessions).where(
                c.tenant_id == tenant_id, c.session_hash == session_hash, c.expires_at > now
            )
        )
        return None if row is None else _record(BrowserSession, row)

    async def delete_session(self, tenant_id: str, session_hash: str) -> None:
        c = t.browser_sessions.c
        await self._count(
            delete(t.browser_sessions).where(
                c.tenant_id == tenant_id, c.session_hash == session_hash
            )
        )

    # -- replay cache and rate limits --------------------------------------------------------

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        stmt = self._insert(t.replay_cache).values(
            tenant_id=tenant_id, key=key, expires_at=expires_at
        )
        # Insert if absent; an entry that has expired may be taken over (it is stale).
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "key"],
            set_={"expires_at": stmt.excluded.expires_at},
            where=t.replay_cache.c.expires_at <= now,
        ).returning(t.replay_cache.c.key)
        return await self._one(stmt) is not None

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        start = now - now % window_seconds
        c = t.rate_limits.c
        stmt = self._insert(t.rate_limits).values(
            tenant_id=tenant_id,
            bucket=bucket,
            window_start=start,
            count=1,
            expires_at=start + window_seconds,
        )
        # SET expressions read the row as it was, so the CASE sees the old window_start.
        same_window = c.window_start == stmt.excluded.window_start
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "bucket"],
            set_={
                "count": case((same_window, c["count"] + 1), else_=literal(1)),
                "window_start": stmt.excluded.window_start,
                "expires_at": stmt.excluded.expires_at,
            },
        ).returning(c["count"])
        row = await self._one(stmt)
        assert row is not None  # an upsert always returns its row
        return int(row[0])

    # -- housekeeping ------------------------------------------------------------------------

    async def stats(self, tenant_id: str, now: int) -> Stats:
        def count(table: Table, *live: ColumnElement[bool]) -> Any:
            return (
                select(func.count())
                .select_from(table)
                .where(table.c.tenant_id == tenant_id, *live)
                .scalar_subquery()
            )

        g, a, r, x = (t.grants.c, t.authorization_codes.c, t.refresh_tokens.c, t.access_tokens.c)
        row = await self._one(
            select(
                count(t.clients),
                count(t.users),
                count(t.grants, g.revoked_at.is_(None), g.expires_at > now),
                count(t.authorization_codes, a.consumed_at.is_(None), a.expires_at > now),
                count(t.access_tokens, x.revoked_at.is_(None), x.expires_at > now),
                count(
                    t.refresh_tokens,
                    r.revoked_at.is_(None),
                    r.rotated_at.is_(None),
                    r.expires_at > now,
                    r.idle_expires_at > now,
                ),
            )
        )
        assert row is not None
        return Stats(*(int(n) for n in row))

    async def purge_expired(self, now: int) -> int:
        expired: list[tuple[Table, ColumnElement[bool]]] = [
            (t.authorization_codes, t.authorization_codes.c.expires_at <= now),
            (
                t.refresh_tokens,
                or_(
                    t.refresh_tokens.c.expires_at <= now,
                    t.refresh_tokens.c.idle_expires_at <= now,
                ),
            ),
            (t.access_tokens, t.access_tokens.c.expires_at <= now),
            (t.grants, t.grants.c.expires_at <= now),
            (t.interactions, t.interactions.c.expires_at <= now),
            (t.browser_sessions, t.browser_sessions.c.expires_at <= now),
            (
                t.signing_keys,
                and_(t.signing_keys.c.expires_at.is_not(None), t.signing_keys.c.expires_at <= now),
            ),
            (t.replay_cache, t.replay_cache.c.expires_at <= now),
            (t.rate_limits, t.rate_limits.c.expires_at <= now),
        ]
        total = 0
        async with self._tx() as conn:
            for table, condition in expired:
                total += (await conn.execute(delete(table).where(condition))).rowcount
        return total


def _upgrade(connection: Connection) -> None:
    """Run ``alembic upgrade head`` on an open connection (no alembic.ini on disk)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
