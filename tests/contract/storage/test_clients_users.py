"""Clients (RFC 7591 §2) and local users: round trips, uniqueness, cascading deletion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ostiary.errors import StorageError
from ostiary.storage import Storage

from .cascade import assert_live, assert_revoked, issue
from .records import NOW, client, user


async def test_client_round_trips_every_field(storage: Storage, tenant: str) -> None:
    saved = client(
        tenant,
        "https://app.example/client.json",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=("authorization_code",),
        response_types=("code",),
        application_type="web",
        client_name="Ünïcode app",
        client_uri="https://app.example",
        logo_uri="https://app.example/logo.png",
        scope="mcp:read mcp:write",
        jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]},
        jwks_uri="https://app.example/jwks",
        client_secret_hash="a" * 64,
        client_secret_expires_at=NOW + 10,
        registration_access_token_hash="b" * 64,
        client_id_issued_at=NOW,
        source="cimd",
        extra={"contacts": ["ops@app.example"], "tos_uri": "https://app.example/tos"},
        metadata_expires_at=NOW + 300,
    )
    await storage.save_client(saved)

    assert await storage.get_client(tenant, saved.client_id) == saved


async def test_client_defaults_round_trip(storage: Storage, tenant: str) -> None:
    saved = client(tenant)
    await storage.save_client(saved)

    assert await storage.get_client(tenant, "client-1") == saved


async def test_save_client_replaces_the_existing_one(storage: Storage, tenant: str) -> None:
    await storage.save_client(client(tenant, client_name="old", jwks={"keys": []}))
    await storage.save_client(client(tenant, client_name="new", jwks=None))

    assert await storage.list_clients(tenant) == [client(tenant, client_name="new")]


async def test_unknown_client_is_none(storage: Storage, tenant: str) -> None:
    assert await storage.get_client(tenant, "nope") is None


async def test_list_clients_sorted_by_client_id(storage: Storage, tenant: str) -> None:
    """Code-point order, whatever the database's collation."""
    for client_id in ("b", "C", "a", "é", "B"):
        await storage.save_client(client(tenant, client_id))

    listed = [c.client_id for c in await storage.list_clients(tenant)]

    assert listed == ["B", "C", "a", "b", "é"]


async def test_delete_client_is_true_once(storage: Storage, tenant: str) -> None:
    await storage.save_client(client(tenant))

    assert await storage.delete_client(tenant, "client-1") is True
    assert await storage.delete_client(tenant, "client-1") is False
    assert await storage.get_client(tenant, "client-1") is None


async def test_delete_client_revokes_its_grants_codes_and_tokens(
    storage: Storage, tenant: str
) -> None:
    await storage.save_client(client(tenant))
    await issue(storage, tenant, "grant-1", client_id="client-1")
    await issue(storage, tenant, "grant-2", client_id="client-2")

    assert await storage.delete_client(tenant, "client-1") is True

    await assert_revoked(storage, tenant, "grant-1")
    await assert_live(storage, tenant, "grant-2")


async def test_user_round_trips(storage: Storage, tenant: str) -> None:
    saved = user(tenant, disabled=True, display_name="Alice A.")
    await storage.save_user(saved)

    assert await storage.get_user(tenant, "user-1") == saved
    assert await storage.get_user_by_username(tenant, "alice") == saved


async def test_totp_secret_round_trips_and_can_be_removed(storage: Storage, tenant: str) -> None:
    enrolled = user(tenant, totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    await storage.save_user(enrolled)
    await storage.save_user(user(tenant, "user-2", username="bob"))

    assert await storage.get_user(tenant, "user-1") == enrolled
    assert await storage.get_user_by_username(tenant, "alice") == enrolled
    assert [u.totp_secret for u in await storage.list_users(tenant)] == [
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        None,
    ]

    await storage.save_user(replace(enrolled, totp_secret=None))
    assert await storage.get_user(tenant, "user-1") == user(tenant)


async def test_admin_flag_round_trips(storage: Storage, tenant: str) -> None:
    """Migration 0007: ``users.admin``, false unless an operator grants it."""
    await storage.save_user(user(tenant))
    assert (await storage.get_user(tenant, "user-1")) == user(tenant, admin=False)
    await storage.save_user(user(tenant, admin=True))
    assert [u.admin for u in await storage.list_users(tenant)] == [True]
    found = await storage.get_user_by_username(tenant, "alice")
    assert found is not None
    assert found.admin is True


async def test_unknown_user_is_none(storage: Storage, tenant: str) -> None:
    assert await storage.get_user(tenant, "user-1") is None
    assert await storage.get_user_by_username(tenant, "alice") is None


async def test_list_users_sorted_by_username(storage: Storage, tenant: str) -> None:
    for n, username in enumerate(("bob", "Zoe", "alice")):
        await storage.save_user(user(tenant, f"user-{n}", username=username))

    assert [u.username for u in await storage.list_users(tenant)] == ["Zoe", "alice", "bob"]


async def test_save_user_replaces_and_may_rename(storage: Storage, tenant: str) -> None:
    await storage.save_user(user(tenant, username="alice"))
    await storage.save_user(user(tenant, username="alicia"))
    await storage.save_user(user(tenant, "user-2", username="alice"))

    assert await storage.list_users(tenant) == [
        user(tenant, "user-2", username="alice"),
        user(tenant, username="alicia"),
    ]


async def test_taken_username_is_a_storage_error_and_changes_nothing(
    storage: Storage, tenant: str
) -> None:
    await storage.save_user(user(tenant, "user-1", username="alice"))
    await storage.save_user(user(tenant, "user-2", username="bob"))

    with pytest.raises(StorageError, match=r"^username 'alice' is taken$"):
        await storage.save_user(user(tenant, "user-3", username="alice"))
    with pytest.raises(StorageError, match=r"^username 'alice' is taken$"):
        await storage.save_user(user(tenant, "user-2", username="alice"))

    assert await storage.list_users(tenant) == [
        user(tenant, "user-1", username="alice"),
        user(tenant, "user-2", username="bob"),
    ]


async def test_same_username_in_two_tenants_is_allowed(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await storage.save_user(user(tenant))
    await storage.save_user(user(other_tenant))

    assert await storage.get_user_by_username(other_tenant, "alice") == user(other_tenant)
    assert await storage.get_user_by_username(tenant, "alice") == user(tenant)


async def test_delete_user_is_true_once_and_frees_the_username(
    storage: Storage, tenant: str
) -> None:
    await storage.save_user(user(tenant))

    assert await storage.delete_user(tenant, "user-1") is True
    assert await storage.delete_user(tenant, "user-1") is False
    assert await storage.list_users(tenant) == []
    await storage.save_user(user(tenant, "user-2"))
    assert await storage.get_user_by_username(tenant, "alice") == user(tenant, "user-2")


async def test_delete_user_revokes_their_grants_codes_and_tokens(
    storage: Storage, tenant: str
) -> None:
    await storage.save_user(user(tenant))
    await issue(storage, tenant, "grant-1", subject="user-1")
    await issue(storage, tenant, "grant-2", subject="user-2")

    assert await storage.delete_user(tenant, "user-1") is True

    await assert_revoked(storage, tenant, "grant-1")
    await assert_live(storage, tenant, "grant-2")
