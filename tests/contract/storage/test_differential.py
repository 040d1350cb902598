"""Differential check: random operation sequences give identical answers on memory and SQLite.

The contract tests pin each rule by example; this drives both backends through the same
random sequences (codes, refresh rotation with and without grace and its superseded
replays, revocation cascades, replay cache, rate limits, stats, purge, notes, usage, upstream
tokens) and compares every answer.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostiary.errors import StorageError
from ostiary.storage import MemoryStorage, RedisEphemeralStore, SqlStorage, Storage, TieredStorage
from tests._services import redis_url

from .conftest import drop_prefix, redis_prefix
from .records import (
    NOW,
    access,
    code,
    consent,
    grant,
    interaction,
    note,
    refresh,
    upstream,
    user,
)

TENANT = "diff"
ids = st.sampled_from(["a", "b", "c"])
times = st.integers(min_value=NOW - 3, max_value=NOW + 3)
offsets = st.integers(min_value=-2, max_value=3)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("save_grant"), ids, st.sampled_from(["u1", "u2"]), offsets),
        st.tuples(st.just("save_code"), ids, ids, offsets),
        st.tuples(st.just("consume"), ids, times),
        st.tuples(st.just("save_refresh"), ids, ids, offsets, offsets),
        st.tuples(st.just("rotate"), ids, ids, times, st.sampled_from([0, 2])),
        st.tuples(st.just("revoke_refresh"), ids, times),
        st.tuples(st.just("save_access"), ids, ids, offsets),
        st.tuples(st.just("revoke_access"), ids, times),
        st.tuples(st.just("revoke_grant"), ids, times),
        st.tuples(st.just("touch_grant"), ids, times),
        st.tuples(st.just("remember_jti"), ids, offsets, times),
        st.tuples(st.just("hit"), ids, st.sampled_from([2, 5]), times),
        st.tuples(st.just("read"), ids, times),
        st.tuples(st.just("purge"), times),
        st.tuples(st.just("save_user"), ids, st.sampled_from(["alice", "bob"])),
        st.tuples(st.just("consent"), ids, st.sampled_from([None, "https://r"]), times),
        st.tuples(st.just("forget"), ids),
        st.tuples(st.just("interaction"), ids, offsets, times),
        st.tuples(st.just("finish"), ids),
        st.tuples(st.just("note"), ids, st.sampled_from(["u1", "u2"]), offsets),
        st.tuples(st.just("drop_note"), ids, st.sampled_from(["u1", "u2"])),
        st.tuples(st.just("usage"), st.sampled_from(["u1", "u2"]), ids),
        st.tuples(
            st.just("upstream"), st.sampled_from(["a", "b", "pending:a"]), st.just("gh"), offsets
        ),
        st.tuples(st.just("drop_upstream"), ids),
    ),
    max_size=25,
)


async def _apply(storage: Storage, op: tuple[Any, ...], step: int) -> object:
    name, *args = op
    if name == "save_grant":
        gid, subject, off = args
        await storage.save_grant(grant(TENANT, gid, subject=subject, expires_at=NOW + off))
        return None
    if name == "save_code":
        h, gid, off = args
        await storage.save_authorization_code(code(TENANT, h, grant_id=gid, expires_at=NOW + off))
        return None
    if name == "consume":
        return await storage.consume_authorization_code(TENANT, *args)
    if name == "save_refresh":
        h, gid, off, idle = args
        token = refresh(TENANT, h, grant_id=gid, expires_at=NOW + off, idle_expires_at=NOW + idle)
        await storage.save_refresh_token(token)
        return None
    if name == "rotate":
        old, new, now, grace = args
        successor = refresh(TENANT, f"{old}>{step}", grant_id=new)
        sealed = f"v1.{successor.token_hash}"
        return await storage.rotate_refresh_token(
            TENANT, old, successor, now, grace, sealed_successor=sealed
        )
    if name == "revoke_refresh":
        return await storage.revoke_refresh_token(TENANT, *args)
    if name == "save_access":
        jti, gid, off = args
        await storage.save_access_token(access(TENANT, jti, grant_id=gid, expires_at=NOW + off))
        return None
    if name == "revoke_access":
        return await storage.revoke_access_token(TENANT, *args)
    if name == "revoke_grant":
        return await storage.revoke_grant(TENANT, *args)
    if name == "touch_grant":
        await storage.touch_grant(TENANT, *args)
        return None
    if name == "remember_jti":
        key, off, now = args
        return await storage.remember_jti(TENANT, key, NOW + off, now)
    if name == "hit":
        return await storage.hit(TENANT, *args)
    if name == "read":
        return await _read(storage, *args)
    if name == "purge":
        return await storage.purge_expired(args[0])
    if name in ("note", "drop_note", "usage", "upstream", "drop_upstream"):
        return await _apply_demo(storage, name, args)
    return await _apply_interactive(storage, name, args)


async def _apply_demo(storage: Storage, name: str, args: list[Any]) -> object:
    """Notes, usage counters and upstream tokens (cascade: revoke_grant, purge)."""
    if name == "note":
        nid, subject, off = args
        await storage.save_note(note(TENANT, nid, subject, created_at=NOW + off))
        return await storage.list_notes(TENANT, subject)
    if name == "drop_note":
        return await storage.delete_note(TENANT, args[1], args[0])
    if name == "usage":
        return await storage.record_usage(TENANT, args[0], args[1], NOW)
    if name == "upstream":
        gid, provider, off = args
        # Pending tokens are purged an hour after updated_at: put that hour inside the clock.
        updated = NOW - 3600 + off
        await storage.save_upstream_token(upstream(TENANT, gid, provider, updated_at=updated))
        return await storage.get_upstream_token(TENANT, gid, provider)
    return await storage.delete_upstream_tokens(TENANT, args[0])


async def _apply_interactive(storage: Storage, name: str, args: list[Any]) -> object:
    """Users, consents and interactions: answers include what a read sees right after."""
    if name == "save_user":
        uid, username = args
        try:
            await storage.save_user(user(TENANT, uid, username))
        except StorageError as exc:
            return str(exc)
        return await storage.list_users(TENANT)
    if name == "consent":
        client_id, resource, created = args
        await storage.save_consent(
            consent(TENANT, resource, client_id=client_id, created_at=created)
        )
        return await storage.get_consent(TENANT, "user-1", client_id, resource)
    if name == "forget":
        return await storage.delete_consents(TENANT, "user-1", args[0])
    if name == "interaction":
        iid, off, now = args
        await storage.save_interaction(interaction(TENANT, iid, expires_at=NOW + off))
        return await storage.get_interaction(TENANT, iid, now)
    return await storage.delete_interaction(TENANT, args[0])


async def _read(storage: Storage, key: str, now: int) -> object:
    return (
        await storage.get_grant(TENANT, key),
        await storage.list_grants(TENANT, "u1"),
        await storage.get_refresh_token(TENANT, key),
        await storage.get_access_token(TENANT, key),
        await storage.stats(TENANT, now),
        await storage.get_upstream_token(TENANT, key, "gh"),
        await storage.get_upstream_token(TENANT, "pending:a", "gh"),
        await storage.list_notes(TENANT, "u1"),
        await storage.get_usage(TENANT, "u1"),
    )


async def _run(storage: Storage, ops: list[tuple[Any, ...]]) -> list[object]:
    await storage.initialize()
    try:
        answers = [await _apply(storage, op, step) for step, op in enumerate(ops)]
        return [*answers, await _read(storage, "a", NOW)]
    finally:
        await storage.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=operations)
def test_memory_and_sqlite_answer_every_sequence_alike(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'diff.db'}"
        expected = asyncio.run(_run(MemoryStorage(), ops))
        actual = asyncio.run(_run(SqlStorage(url), ops))

    assert actual == expected


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_memory_and_memory_over_redis_answer_every_sequence_alike(
    ops: list[tuple[Any, ...]],
) -> None:
    """The same sequences with codes, jtis, rate limits and interactions in Redis.

    Without ``purge``: Redis expires by TTL, so what a purge removes legitimately differs.
    """
    ops = [op for op in ops if op[0] != "purge"]
    url, prefix = redis_url(), redis_prefix()
    try:
        expected = asyncio.run(_run(MemoryStorage(), ops))
        tiered = TieredStorage(MemoryStorage(), RedisEphemeralStore(url, prefix=prefix))
        actual = asyncio.run(_run(tiered, ops))
    finally:
        asyncio.run(drop_prefix(url, prefix))

    assert actual == expected
