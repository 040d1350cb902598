"""The SQL statements of the storage backend, built once (SQLAlchemy Core; RFC 9700 §4.14).

Every statement is constructed at import with named bind parameters, so a call only binds
values: no statement construction or cache-key computation on the token endpoint's path.
Key parameters are named ``k_<column>`` (SQLAlchemy reserves bare column names for the
SET clause of an UPDATE); ``now`` is the time. Upserts depend on the dialect's
``INSERT … ON CONFLICT`` construct and are built per backend by :func:`upserts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Delete,
    Executable,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)

from ostiary.settings import MAX_REFRESH_GRACE_SECONDS
from ostiary.storage import schema as t
from ostiary.storage.rules import PENDING_UPSTREAM_TTL

NOW: BindParameter[int] = bindparam("now", type_=BigInteger)


def k(column: str) -> BindParameter[Any]:
    """The bind parameter of a key column (``k_<column>``)."""
    return bindparam(f"k_{column}")


def key_of(table: Table) -> ColumnElement[bool]:
    """``tenant_id = :k_tenant_id AND <id> = :k_<id>`` for the table's primary key."""
    return and_(*(column == k(column.name) for column in table.primary_key.columns))


def _by_key(table: Table) -> Select[Any]:
    return select(table).where(key_of(table))


def _of_tenant(table: Table, *more: ColumnElement[bool]) -> Select[Any]:
    return select(table).where(table.c.tenant_id == k("tenant_id"), *more)


def _retire(table: Table, column: str, which: ColumnElement[bool]) -> Update:
    """Stamp ``column`` with ``now`` on the rows ``which`` selects, where still NULL."""
    return (
        update(table)
        .where(table.c.tenant_id == k("tenant_id"), which, table.c[column].is_(None))
        .values({column: NOW})
    )


codes, rts, ats, grants = t.authorization_codes, t.refresh_tokens, t.access_tokens, t.grants
notes, usage, links, ups = t.notes, t.api_usage, t.linked_identities, t.upstream_tokens

GET: dict[Table, Select[Any]] = {table: _by_key(table) for table in t.metadata.sorted_tables}
DELETE: dict[Table, Delete] = {
    table: delete(table).where(key_of(table)) for table in t.metadata.sorted_tables
}
LIST: dict[Table, Select[Any]] = {
    table: _of_tenant(table) for table in (t.clients, t.users, t.signing_keys)
}
GET_USER_BY_NAME = _of_tenant(t.users, t.users.c.username == k("username"))
LIST_LIVE_GRANTS = _of_tenant(
    grants, grants.c.subject == k("subject"), grants.c.revoked_at.is_(None)
)
LIST_LIVE_CLIENT_GRANTS = _of_tenant(
    grants, grants.c.client_id == k("client_id"), grants.c.revoked_at.is_(None)
)
GET_LIVE = {
    table: _by_key(table).where(table.c.expires_at > NOW)
    for table in (t.interactions, t.browser_sessions)
}
DELETE_CONSENTS = delete(t.consents).where(
    t.consents.c.tenant_id == k("tenant_id"),
    t.consents.c.subject == k("subject"),
    t.consents.c.client_id == k("client_id"),
)
TOUCH_GRANT = update(grants).where(key_of(grants)).values(last_used_at=NOW)
REVOKE_GRANT = _retire(grants, "revoked_at", grants.c.grant_id == k("grant_id"))
#: The cascade of one grant: codes consumed, refresh tokens and access-token records revoked
#: (a revoked refresh token keeps no sealed successor).
CASCADE = (
    _retire(codes, "consumed_at", codes.c.grant_id == k("grant_id")),
    _retire(rts, "revoked_at", rts.c.grant_id == k("grant_id")).values(sealed_successor=None),
    _retire(ats, "revoked_at", ats.c.grant_id == k("grant_id")),
)
#: Upstream tokens are deleted, not stamped: nothing may use them after a revocation.
DELETE_UPSTREAM = delete(ups).where(
    ups.c.tenant_id == k("tenant_id"), ups.c.grant_id == k("grant_id")
)
DELETE_LINKS_OF = delete(links).where(
    links.c.tenant_id == k("tenant_id"), links.c.subject == k("subject")
)
LIST_NOTES = _of_tenant(notes, notes.c.subject == k("subject"))
LIST_USAGE = select(usage.c.name, usage.c["count"]).where(
    usage.c.tenant_id == k("tenant_id"), usage.c.subject == k("subject")
)
LIST_LINKS = _of_tenant(links, links.c.subject == k("subject"))
REVOKE_REFRESH = _retire(rts, "revoked_at", rts.c.token_hash == k("token_hash")).values(
    sealed_successor=None
)
REVOKE_ACCESS = _retire(ats, "revoked_at", ats.c.jti == k("jti"))

#: Single use: only one caller's UPDATE finds ``consumed_at IS NULL``.
CONSUME_CODE = (
    update(codes)
    .where(key_of(codes), codes.c.consumed_at.is_(None), codes.c.expires_at > NOW)
    .values(consumed_at=NOW)
    .returning(*codes.c)
)

#: Share lock on the grant row: taken before any token lock, as revoke_grant does.
#: The lock a rotation takes first: the row lock its TOUCH_GRANT needs anyway, so two rotations
#: of one grant queue here instead of both sharing the row and deadlocking on the touch.
LOCK_GRANT = (
    select(literal(1)).select_from(grants).where(key_of(grants)).with_for_update(key_share=True)
)


#: Prefix of the grant's columns in the ``*_WITH_GRANT`` reads.
GRANT_PREFIX = "g_"


def _with_grant(table: Table) -> Select[Any]:
    """A code or refresh token by its key, with its grant's columns labelled ``g_<column>``."""
    same_grant = and_(
        grants.c.tenant_id == table.c.tenant_id, grants.c.grant_id == table.c.grant_id
    )
    labelled = (column.label(f"{GRANT_PREFIX}{column.name}") for column in grants.c)
    return select(table, *labelled).join(grants, same_grant).where(key_of(table))


#: The first read of a grant operation (code redemption, refresh): the record and its grant in
#: one statement. The ``LOCKED_`` forms (PostgreSQL) also lock the grant row as LOCK_GRANT does,
#: before any token row: the order revoke_grant takes.
CODE_WITH_GRANT = _with_grant(codes)
REFRESH_WITH_GRANT = _with_grant(rts)
LOCKED_CODE_WITH_GRANT = CODE_WITH_GRANT.with_for_update(of=grants, key_share=True)
LOCKED_REFRESH_WITH_GRANT = REFRESH_WITH_GRANT.with_for_update(of=grants, key_share=True)
LOCKED_GRANT = select(grants).where(key_of(grants)).with_for_update(key_share=True)


#: Exactly one caller, in any process, finds the token unrotated; it records the successor.
#: There is no grace arm: a replay inside the window is answered with that successor instead.
ROTATE = (
    update(rts)
    .where(
        key_of(rts),
        rts.c.revoked_at.is_(None),
        rts.c.expires_at > NOW,
        rts.c.idle_expires_at > NOW,
        rts.c.rotated_at.is_(None),
    )
    .values(
        rotated_at=NOW,
        successor_hash=bindparam("successor_hash"),
        sealed_successor=bindparam("sealed_successor"),
    )
    .returning(*rts.c)
)

#: When a token rotates, the one it replaced (already rotated, same grant) forgets its sealed
#: successor: presenting it now is reuse, so nothing may open that value again.
FORGET_PREVIOUS = (
    update(rts)
    .where(
        rts.c.tenant_id == k("tenant_id"),
        rts.c.grant_id == k("grant_id"),
        rts.c.successor_hash == k("token_hash"),
        rts.c.sealed_successor.is_not(None),
    )
    .values(sealed_successor=null())  # NULL in the SQL: no bind, so it also works as a CTE
)

#: Run by purge_expired: no grace window reaches back further than the largest allowed one.
FORGET_OLD_SUCCESSORS = (
    update(rts)
    .where(
        rts.c.sealed_successor.is_not(None),
        rts.c.rotated_at <= NOW - MAX_REFRESH_GRACE_SECONDS,
    )
    .values(sealed_successor=None)
)


def _count(table: Table, *live: ColumnElement[bool]) -> Any:
    return (
        select(func.count())
        .select_from(table)
        .where(table.c.tenant_id == k("tenant_id"), *live)
        .scalar_subquery()
    )


STATS = select(
    _count(t.clients),
    _count(t.users),
    _count(grants, grants.c.revoked_at.is_(None), grants.c.expires_at > NOW),
    _count(codes, codes.c.consumed_at.is_(None), codes.c.expires_at > NOW),
    _count(ats, ats.c.revoked_at.is_(None), ats.c.expires_at > NOW),
    _count(
        rts,
        rts.c.revoked_at.is_(None),
        rts.c.rotated_at.is_(None),
        rts.c.expires_at > NOW,
        rts.c.idle_expires_at > NOW,
    ),
)

#: Taken first by purge_expired, so it locks grants before tokens as revoke_grant does.
LOCK_EXPIRED_GRANTS = select(grants.c.grant_id).where(grants.c.expires_at <= NOW).with_for_update()

#: Grants first: every transaction that touches both locks the grant before its tokens.
PURGE = (
    # Upstream tokens go with their expired grant, and abandoned pending logins' after a while.
    delete(ups).where(
        or_(
            exists().where(
                grants.c.tenant_id == ups.c.tenant_id,
                grants.c.grant_id == ups.c.grant_id,
                grants.c.expires_at <= NOW,
            ),
            and_(
                ups.c.grant_id.startswith("pending:", autoescape=True),
                ups.c.updated_at <= NOW - PENDING_UPSTREAM_TTL,
            ),
        )
    ),
    delete(grants).where(grants.c.expires_at <= NOW),
    delete(codes).where(codes.c.expires_at <= NOW),
    delete(rts).where(or_(rts.c.expires_at <= NOW, rts.c.idle_expires_at <= NOW)),
    delete(ats).where(ats.c.expires_at <= NOW),
    delete(t.interactions).where(t.interactions.c.expires_at <= NOW),
    delete(t.browser_sessions).where(t.browser_sessions.c.expires_at <= NOW),
    delete(t.signing_keys).where(
        t.signing_keys.c.expires_at.is_not(None), t.signing_keys.c.expires_at <= NOW
    ),
    delete(t.replay_cache).where(t.replay_cache.c.expires_at <= NOW),
    delete(t.rate_limits).where(t.rate_limits.c.expires_at <= NOW),
)


#: Rows one SQLite purge transaction deletes at most (``PURGE_BATCHES``).
PURGE_BATCH = 5000


def _batched(statement: Delete) -> Delete:
    """``statement`` limited to PURGE_BATCH rows: ``rowid IN (SELECT rowid … LIMIT n)``.

    SQLite has one write lock for the whole database. A purge of a backlog (millions of
    expired rows after downtime) in one transaction held it for tens of seconds, so token
    requests waited out their lock timeout and got 503; in batches, writers get the lock
    between two of them. SQLite only: every table here has a rowid.
    """
    table = statement.table
    where = statement.whereclause
    assert where is not None
    rowid: ColumnElement[Any] = literal_column("rowid")
    chosen: Select[Any] = select(rowid).select_from(table).where(where).limit(PURGE_BATCH)
    return delete(table).where(rowid.in_(chosen.scalar_subquery()))


def _revoked_with_grant(prefix: str = "") -> ColumnElement[Any]:
    """``revoked_at``: as given, else the grant's revocation time (share-locking the grant).

    A token saved after a concurrent ``revoke_grant`` thus ends up revoked whichever
    commits first. ``prefix`` is the one of the INSERT's bind names.
    """
    g = grants.c
    grant_revoked = (
        select(g.revoked_at)
        .where(
            g.tenant_id == bindparam(f"{prefix}tenant_id"),
            g.grant_id == bindparam(f"{prefix}grant_id"),
        )
        .with_for_update(read=True)
        .scalar_subquery()
    )
    return func.coalesce(bindparam(f"{prefix}revoked_at", type_=BigInteger), grant_revoked)


def _grant_not_revoked() -> ColumnElement[bool]:
    """True unless the upstream token's grant is revoked (share-locking the grant row).

    The lock makes a save racing ``revoke_grant`` wait for it: the token is then either
    deleted by the revocation's cascade or never stored.
    """
    g = grants.c
    grant_revoked = (
        select(g.revoked_at)
        .where(g.tenant_id == bindparam("tenant_id"), g.grant_id == bindparam("grant_id"))
        .with_for_update(read=True)
        .scalar_subquery()
    )
    return grant_revoked.is_(None)


@dataclass(frozen=True, slots=True)
class Upserts:
    """The dialect-specific ``INSERT … ON CONFLICT`` statements."""

    save: dict[Table, Executable]
    insert_refresh: Executable
    remember_jti: Executable
    hit: Executable
    record_usage: Executable


#: Bind-name prefixes of :func:`rotation_writes`: the successor's columns, the access token's.
SUCCESSOR_PREFIX, ACCESS_PREFIX = "r_", "a_"


def rotation_writes(insert: Callable[[Table], Any]) -> Executable:
    """PostgreSQL: what a won rotation writes, as one statement (one round trip).

    FORGET_PREVIOUS, the successor's INSERT and TOUCH_GRANT as data-modifying CTEs (which
    SQLite does not have), then the access token's INSERT. Each INSERT's binds carry a prefix
    (:data:`SUCCESSOR_PREFIX`, :data:`ACCESS_PREFIX`) so that no bind is named like a column:
    compiled for a set of parameter names, an UPDATE would SET every column named by one.
    """

    def prefixed(table: Table, prefix: str) -> Any:
        values: dict[str, Any] = {
            c.name: bindparam(f"{prefix}{c.name}", type_=c.type) for c in table.c
        }
        values["revoked_at"] = _revoked_with_grant(prefix)
        return insert(table).values(values)

    ctes = (
        FORGET_PREVIOUS.cte("forget_previous"),
        prefixed(rts, SUCCESSOR_PREFIX).cte("successor"),
        TOUCH_GRANT.cte("touch_grant"),
    )
    return prefixed(ats, ACCESS_PREFIX).add_cte(*ctes)  # type: ignore[no-any-return]


def upserts(insert: Callable[[Table], Any]) -> Upserts:
    """Build the upserts with a dialect's ``insert`` (sqlite or postgresql)."""

    def save(table: Table) -> Executable:
        values: dict[str, Any] = {c.name: bindparam(c.name, type_=c.type) for c in table.c}
        if table is rts or table is ats:
            values["revoked_at"] = _revoked_with_grant()
        if table is ups:
            stmt = insert(ups).from_select(
                list(values), select(*values.values()).where(_grant_not_revoked())
            )
        else:
            stmt = insert(table).values(values)
        keys = [c.name for c in table.primary_key.columns]
        changes = {c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=changes)  # type: ignore[no-any-return]

    jti = insert(t.replay_cache).values(
        tenant_id=bindparam("tenant_id"), key=bindparam("key"), expires_at=bindparam("expires_at")
    )
    rate = insert(t.rate_limits).values(
        tenant_id=bindparam("tenant_id"),
        bucket=bindparam("bucket"),
        window_start=bindparam("window_start"),
        count=1,
        expires_at=bindparam("expires_at"),
    )
    window = t.rate_limits.c.window_start == rate.excluded.window_start
    used = insert(usage).values(
        tenant_id=bindparam("tenant_id"),
        subject=bindparam("subject"),
        name=bindparam("name"),
        count=1,
        last_used_at=NOW,
    )
    return Upserts(
        save={table: save(table) for table in t.metadata.sorted_tables},
        insert_refresh=insert(rts).values(
            {c.name: bindparam(c.name, type_=c.type) for c in rts.c}
            | {"revoked_at": _revoked_with_grant()}
        ),
        # Insert if absent; an expired entry may be taken over. No row back = replay.
        remember_jti=jti.on_conflict_do_update(
            index_elements=["tenant_id", "key"],
            set_={"expires_at": jti.excluded.expires_at},
            where=t.replay_cache.c.expires_at <= NOW,
        ).returning(t.replay_cache.c.key),
        # SET reads the row as it was, so the CASE sees the old window_start.
        hit=rate.on_conflict_do_update(
            index_elements=["tenant_id", "bucket"],
            set_={
                "count": case((window, t.rate_limits.c["count"] + 1), else_=literal(1)),
                "window_start": rate.excluded.window_start,
                "expires_at": rate.excluded.expires_at,
            },
        ).returning(t.rate_limits.c["count"]),
        # One statement: concurrent callers each add exactly one.
        record_usage=used.on_conflict_do_update(
            index_elements=["tenant_id", "subject", "name"],
            set_={"count": usage.c["count"] + 1, "last_used_at": used.excluded.last_used_at},
        ).returning(usage.c["count"]),
    )


#: The purge, a bounded batch per statement (SQLite; see :func:`_batched`).
PURGE_BATCHES = tuple(_batched(statement) for statement in PURGE)
