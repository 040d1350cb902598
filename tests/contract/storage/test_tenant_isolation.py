"""One tenant never reads, consumes, rotates, revokes or lists another's records."""

from __future__ import annotations

from ostiary.core.models import ConsumeResult, ConsumeStatus, RotateResult, RotateStatus, Stats
from ostiary.storage import Storage

from .cascade import assert_live, issue
from .records import NOW, client, consent, interaction, refresh, session, signing_key, user


async def _populate(storage: Storage, tenant: str) -> None:
    await storage.save_client(client(tenant))
    await storage.save_user(user(tenant))
    await issue(storage, tenant, "grant-1")
    await storage.save_consent(consent(tenant))
    await storage.save_signing_key(signing_key(tenant))
    await storage.save_interaction(interaction(tenant))
    await storage.save_session(session(tenant))


async def test_other_tenant_reads_nothing(storage: Storage, tenant: str, other_tenant: str) -> None:
    await _populate(storage, tenant)
    b = other_tenant

    assert await storage.get_client(b, "client-1") is None
    assert await storage.list_clients(b) == []
    assert await storage.get_user(b, "user-1") is None
    assert await storage.get_user_by_username(b, "alice") is None
    assert await storage.list_users(b) == []
    assert await storage.get_grant(b, "grant-1") is None
    assert await storage.list_grants(b, "user-1") == []
    assert await storage.get_refresh_token(b, "rt-grant-1") is None
    assert await storage.get_access_token(b, "at-grant-1") is None
    assert await storage.get_consent(b, "user-1", "client-1", "https://mcp.example/mcp") is None
    assert await storage.list_signing_keys(b) == []
    assert await storage.get_interaction(b, "ia-1", NOW) is None
    assert await storage.get_session(b, "s" * 64, NOW) is None
    assert await storage.stats(b, NOW) == Stats(0, 0, 0, 0, 0, 0)


async def test_other_tenant_cannot_spend_or_revoke_anything(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await _populate(storage, tenant)
    b = other_tenant

    assert await storage.consume_authorization_code(b, "code-grant-1", NOW) == ConsumeResult(
        ConsumeStatus.NOT_FOUND
    )
    assert await storage.rotate_refresh_token(
        b, "rt-grant-1", refresh(b, "stolen"), NOW, 30
    ) == RotateResult(RotateStatus.NOT_FOUND)
    assert await storage.get_refresh_token(b, "stolen") is None
    assert await storage.revoke_refresh_token(b, "rt-grant-1", NOW) is False
    assert await storage.revoke_access_token(b, "at-grant-1", NOW) is False
    assert await storage.revoke_grant(b, "grant-1", NOW) is False
    await storage.touch_grant(b, "grant-1", NOW + 1)
    assert await storage.delete_client(b, "client-1") is False
    assert await storage.delete_user(b, "user-1") is False
    assert await storage.delete_consents(b, "user-1", "client-1") == 0
    assert await storage.delete_interaction(b, "ia-1") is False
    await storage.delete_session(b, "s" * 64)

    await assert_live(storage, tenant, "grant-1")
    grant = await storage.get_grant(tenant, "grant-1")
    assert grant is not None
    assert grant.last_used_at is None
    assert await storage.get_client(tenant, "client-1") == client(tenant)
    assert await storage.get_user(tenant, "user-1") == user(tenant)
    assert await storage.get_consent(tenant, "user-1", "client-1", consent(tenant).resource) == (
        consent(tenant)
    )
    assert await storage.get_interaction(tenant, "ia-1", NOW) == interaction(tenant)
    assert await storage.get_session(tenant, "s" * 64, NOW) == session(tenant)


async def test_replay_cache_and_rate_limits_are_per_tenant(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    assert await storage.remember_jti(tenant, "jti", NOW + 60, NOW) is True
    assert await storage.remember_jti(other_tenant, "jti", NOW + 60, NOW) is True
    assert await storage.hit(tenant, "b", 60, NOW) == 1
    assert await storage.hit(tenant, "b", 60, NOW) == 2
    assert await storage.hit(other_tenant, "b", 60, NOW) == 1


async def test_same_ids_in_two_tenants_are_independent(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await issue(storage, tenant, "grant-1")
    await issue(storage, other_tenant, "grant-1")

    assert await storage.revoke_grant(tenant, "grant-1", NOW) is True

    await assert_live(storage, other_tenant, "grant-1")
