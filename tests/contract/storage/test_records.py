"""Access-token records, consents and signing keys (RFC 9068 §2.2; RFC 7517 §4.5)."""

from __future__ import annotations

from dataclasses import replace

from ostiary.storage import Storage

from .records import NOW, access, consent, signing_key


async def test_access_token_record_round_trips(storage: Storage, tenant: str) -> None:
    saved = access(tenant, revoked_at=None)
    await storage.save_access_token(saved)

    assert await storage.get_access_token(tenant, "jti-1") == saved
    assert await storage.get_access_token(tenant, "jti-2") is None


async def test_revoke_access_token_is_true_once(storage: Storage, tenant: str) -> None:
    await storage.save_access_token(access(tenant))

    assert await storage.revoke_access_token(tenant, "jti-1", NOW + 3) is True
    assert await storage.revoke_access_token(tenant, "jti-1", NOW + 4) is False
    assert await storage.revoke_access_token(tenant, "jti-2", NOW) is False
    assert await storage.get_access_token(tenant, "jti-1") == access(tenant, revoked_at=NOW + 3)


async def test_consent_with_and_without_resource_are_distinct(
    storage: Storage, tenant: str
) -> None:
    scoped = consent(tenant, "https://mcp.example/mcp", scopes=("mcp:read", "mcp:write"))
    unscoped = consent(tenant, None, scopes=("mcp:read",))
    await storage.save_consent(scoped)
    await storage.save_consent(unscoped)

    assert await storage.get_consent(tenant, "user-1", "client-1", scoped.resource) == scoped
    assert await storage.get_consent(tenant, "user-1", "client-1", None) == unscoped
    assert await storage.get_consent(tenant, "user-1", "client-1", "https://other") is None
    assert await storage.get_consent(tenant, "user-2", "client-1", None) is None


async def test_save_consent_replaces(storage: Storage, tenant: str) -> None:
    await storage.save_consent(consent(tenant, scopes=("mcp:read",)))
    await storage.save_consent(consent(tenant, scopes=("mcp:write",), created_at=NOW + 1))

    stored = await storage.get_consent(tenant, "user-1", "client-1", "https://mcp.example/mcp")

    assert stored == consent(tenant, scopes=("mcp:write",), created_at=NOW + 1)


async def test_delete_consents_removes_every_resource_of_that_client(
    storage: Storage, tenant: str
) -> None:
    await storage.save_consent(consent(tenant, "https://a.example"))
    await storage.save_consent(consent(tenant, None))
    await storage.save_consent(consent(tenant, None, client_id="client-2"))

    assert await storage.delete_consents(tenant, "user-1", "client-1") == 2
    assert await storage.delete_consents(tenant, "user-1", "client-1") == 0

    assert await storage.get_consent(tenant, "user-1", "client-1", None) is None
    assert await storage.get_consent(tenant, "user-1", "client-2", None) == consent(
        tenant, None, client_id="client-2"
    )


async def test_signing_keys_list_newest_first(storage: Storage, tenant: str) -> None:
    old = signing_key(tenant, "k-old", created_at=NOW - 100, retired_at=NOW, expires_at=NOW + 9)
    new = signing_key(tenant, "k-new", created_at=NOW, alg="EdDSA")
    await storage.save_signing_key(old)
    await storage.save_signing_key(new)

    assert await storage.list_signing_keys(tenant) == [new, old]


async def test_save_signing_key_replaces_by_kid(storage: Storage, tenant: str) -> None:
    key = signing_key(tenant)
    await storage.save_signing_key(key)
    await storage.save_signing_key(replace(key, retired_at=NOW + 1, expires_at=NOW + 901))

    assert await storage.list_signing_keys(tenant) == [
        replace(key, retired_at=NOW + 1, expires_at=NOW + 901)
    ]
