"""Helpers that issue a whole grant and check the revocation cascade (RFC 7009 §2.1)."""

from __future__ import annotations

from ostiary.core.models import ConsumeStatus, RotateStatus
from ostiary.storage import Storage

from .records import NOW, access, code, grant, refresh


async def issue(storage: Storage, tenant: str, grant_id: str, **who: str) -> None:
    """A grant with one code, one refresh token and one access-token record."""
    await storage.save_grant(grant(tenant, grant_id, **who))
    await storage.save_authorization_code(
        code(tenant, f"code-{grant_id}", grant_id=grant_id, **who)
    )
    await storage.save_refresh_token(refresh(tenant, f"rt-{grant_id}", grant_id=grant_id, **who))
    await storage.save_access_token(access(tenant, f"at-{grant_id}", grant_id=grant_id, **who))


async def assert_revoked(storage: Storage, tenant: str, grant_id: str) -> None:
    stored = await storage.get_grant(tenant, grant_id)
    assert stored is not None
    assert stored.revoked_at is not None
    consumed = await storage.consume_authorization_code(tenant, f"code-{grant_id}", NOW)
    assert consumed.status is ConsumeStatus.REPLAYED
    rotated = await storage.rotate_refresh_token(
        tenant, f"rt-{grant_id}", refresh(tenant, "next"), NOW, 30
    )
    assert rotated.status is RotateStatus.REVOKED
    record = await storage.get_access_token(tenant, f"at-{grant_id}")
    assert record is not None
    assert record.revoked_at is not None


async def assert_live(storage: Storage, tenant: str, grant_id: str) -> None:
    stored = await storage.get_grant(tenant, grant_id)
    assert stored is not None
    assert stored.revoked_at is None
    consumed = await storage.consume_authorization_code(tenant, f"code-{grant_id}", NOW)
    assert consumed.status is ConsumeStatus.OK
    record = await storage.get_access_token(tenant, f"at-{grant_id}")
    assert record is not None
    assert record.revoked_at is None
    token = await storage.get_refresh_token(tenant, f"rt-{grant_id}")
    assert token is not None
    assert token.revoked_at is None
