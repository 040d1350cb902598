"""Interactions, browser sessions, the jti replay cache and rate limits (RFC 7523 §3)."""

from __future__ import annotations

import asyncio

import pytest

from ostiary.errors import StorageError
from ostiary.storage import Storage

from .records import NOW, client, interaction, session


async def test_interaction_round_trips_until_it_expires(storage: Storage, tenant: str) -> None:
    saved = interaction(tenant, subject="user-1", expires_at=NOW + 10)
    await storage.save_interaction(saved)

    assert await storage.get_interaction(tenant, "ia-1", NOW + 9) == saved
    assert await storage.get_interaction(tenant, "ia-1", NOW + 10) is None
    assert await storage.get_interaction(tenant, "ia-2", NOW) is None


async def test_save_interaction_replaces(storage: Storage, tenant: str) -> None:
    await storage.save_interaction(interaction(tenant))
    await storage.save_interaction(interaction(tenant, subject="user-1", params={"a": 1}))

    stored = await storage.get_interaction(tenant, "ia-1", NOW)

    assert stored == interaction(tenant, subject="user-1", params={"a": 1})


async def test_delete_interaction_is_single_use_under_concurrency(
    storage: Storage, tenant: str
) -> None:
    await storage.save_interaction(interaction(tenant))

    results = await asyncio.gather(*(storage.delete_interaction(tenant, "ia-1") for _ in range(10)))

    assert sorted(results) == [False] * 9 + [True]
    assert await storage.get_interaction(tenant, "ia-1", NOW) is None


async def test_session_round_trips_until_it_expires_and_deletes(
    storage: Storage, tenant: str
) -> None:
    saved = session(tenant, expires_at=NOW + 10)
    await storage.save_session(saved)

    assert await storage.get_session(tenant, saved.session_hash, NOW + 9) == saved
    assert await storage.get_session(tenant, saved.session_hash, NOW + 10) is None
    await storage.delete_session(tenant, saved.session_hash)
    await storage.delete_session(tenant, "unknown")
    assert await storage.get_session(tenant, saved.session_hash, NOW) is None


async def test_remember_jti_is_true_only_the_first_time(storage: Storage, tenant: str) -> None:
    assert await storage.remember_jti(tenant, "jti-1", NOW + 60, NOW) is True
    assert await storage.remember_jti(tenant, "jti-1", NOW + 60, NOW + 59) is False
    assert await storage.remember_jti(tenant, "jti-2", NOW + 60, NOW) is True


async def test_expired_jti_may_be_remembered_again(storage: Storage, tenant: str) -> None:
    assert await storage.remember_jti(tenant, "jti-1", NOW + 60, NOW) is True
    assert await storage.remember_jti(tenant, "jti-1", NOW + 200, NOW + 60) is True
    assert await storage.remember_jti(tenant, "jti-1", NOW + 300, NOW + 199) is False


async def test_concurrent_remember_jti_has_one_winner(storage: Storage, tenant: str) -> None:
    results = await asyncio.gather(
        *(storage.remember_jti(tenant, "jti-1", NOW + 60, NOW) for _ in range(10))
    )

    assert sorted(results) == [False] * 9 + [True]


async def test_hit_counts_within_a_fixed_window_and_resets(storage: Storage, tenant: str) -> None:
    window_start = NOW - NOW % 60

    counts = [
        await storage.hit(tenant, "token:1.2.3.4", 60, window_start),
        await storage.hit(tenant, "token:1.2.3.4", 60, window_start + 59),
        await storage.hit(tenant, "login:alice", 60, window_start + 1),
        await storage.hit(tenant, "token:1.2.3.4", 60, window_start + 60),
        await storage.hit(tenant, "token:1.2.3.4", 60, window_start + 61),
    ]

    assert counts == [1, 2, 1, 1, 2]


async def test_concurrent_hits_are_all_counted(storage: Storage, tenant: str) -> None:
    counts = await asyncio.gather(*(storage.hit(tenant, "b", 60, NOW) for _ in range(10)))

    assert sorted(counts) == list(range(1, 11))


async def test_mutating_a_saved_or_returned_record_changes_nothing_stored(
    storage: Storage, tenant: str
) -> None:
    saved = interaction(tenant)
    await storage.save_interaction(saved)
    saved.params["state"] = "changed by the caller"
    returned = await storage.get_interaction(tenant, "ia-1", NOW)
    assert returned is not None
    returned.params["client_id"] = "changed too"

    assert await storage.get_interaction(tenant, "ia-1", NOW) == interaction(tenant)


async def test_mutating_a_returned_client_changes_nothing_stored(
    storage: Storage, tenant: str
) -> None:
    jwks = {"keys": [{"kty": "EC", "kid": "k1"}]}
    saved = client(tenant, jwks=jwks, extra={"contacts": ["a@example.com"]})
    await storage.save_client(saved)
    for returned in (
        await storage.get_client(tenant, "client-1"),
        *await storage.list_clients(tenant),
    ):
        assert returned is not None
        assert returned.jwks is not None
        returned.jwks["keys"][0]["kid"] = "changed"
        returned.extra["contacts"].append("b@example.com")
        returned.extra["tos_uri"] = "https://changed.example"
    plain = client(tenant, "client-2")
    await storage.save_client(plain)
    returned_plain = await storage.get_client(tenant, "client-2")
    assert returned_plain is not None
    returned_plain.extra["added"] = True

    assert await storage.get_client(tenant, "client-1") == saved
    assert saved.jwks == {"keys": [{"kty": "EC", "kid": "k1"}]}
    assert await storage.get_client(tenant, "client-2") == client(tenant, "client-2")


async def test_dict_fields_come_back_as_json_would_store_them(
    storage: Storage, tenant: str
) -> None:
    await storage.save_interaction(interaction(tenant, params={"scopes": ("a", "b"), 7: None}))

    stored = await storage.get_interaction(tenant, "ia-1", NOW)

    assert stored is not None
    assert stored.params == {"scopes": ["a", "b"], "7": None}


async def test_a_value_json_cannot_hold_is_a_storage_error_and_nothing_is_stored(
    storage: Storage, tenant: str
) -> None:
    with pytest.raises(StorageError, match=r"^storage backend failed: "):
        await storage.save_interaction(interaction(tenant, params={"when": object()}))

    assert await storage.get_interaction(tenant, "ia-1", NOW) is None
