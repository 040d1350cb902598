"""Linked upstream identities and upstream tokens (IdentityStore), incl. the revocation cascade."""

from __future__ import annotations

import asyncio
import time

from ostiary.storage import Storage

from .cascade import issue
from .records import NOW, client, grant, linked, upstream, user


async def test_linked_identity_round_trips(storage: Storage, tenant: str) -> None:
    full = linked(tenant)
    bare = linked(tenant, "google", "g-1", email=None, display_name=None)
    await storage.save_linked_identity(full)
    await storage.save_linked_identity(bare)

    assert await storage.get_linked_identity(tenant, "github", "gh-42") == full
    assert await storage.get_linked_identity(tenant, "google", "g-1") == bare
    assert await storage.get_linked_identity(tenant, "google", "gh-42") is None
    assert await storage.get_linked_identity(tenant, "github", "gh-43") is None


async def test_save_linked_identity_replaces_by_provider_and_upstream_subject(
    storage: Storage, tenant: str
) -> None:
    await storage.save_linked_identity(linked(tenant))
    moved = linked(tenant, subject="user-2", email="new@example.com", created_at=NOW + 1)
    await storage.save_linked_identity(moved)

    assert await storage.get_linked_identity(tenant, "github", "gh-42") == moved
    assert await storage.list_linked_identities(tenant, "user-1") == []
    assert await storage.list_linked_identities(tenant, "user-2") == [moved]


async def test_list_linked_identities_is_the_subjects_oldest_first(
    storage: Storage, tenant: str
) -> None:
    later = linked(tenant, "oidc", "o-1", created_at=NOW + 5)
    google = linked(tenant, "google", "g-1")
    github = linked(tenant, "github", "gh-42")
    await storage.save_linked_identity(later)
    await storage.save_linked_identity(google)
    await storage.save_linked_identity(github)
    await storage.save_linked_identity(linked(tenant, "github", "gh-7", subject="user-2"))

    assert await storage.list_linked_identities(tenant, "user-1") == [github, google, later]
    assert await storage.list_linked_identities(tenant, "user-3") == []


async def test_upstream_token_round_trips(storage: Storage, tenant: str) -> None:
    full = upstream(tenant)
    bare = upstream(tenant, "pending:ia-1", refresh_token_enc=None, expires_at=None, scope=None)
    await storage.save_upstream_token(full)
    await storage.save_upstream_token(bare)

    assert await storage.get_upstream_token(tenant, "grant-1", "github") == full
    assert await storage.get_upstream_token(tenant, "pending:ia-1", "github") == bare
    assert await storage.get_upstream_token(tenant, "grant-1", "google") is None
    assert await storage.get_upstream_token(tenant, "grant-2", "github") is None


async def test_save_upstream_token_replaces_by_grant_and_provider(
    storage: Storage, tenant: str
) -> None:
    await storage.save_upstream_token(upstream(tenant))
    await storage.save_upstream_token(upstream(tenant, "grant-1", "google"))
    refreshed = upstream(tenant, access_token_enc="v1.second", updated_at=NOW + 60)
    await storage.save_upstream_token(refreshed)

    assert await storage.get_upstream_token(tenant, "grant-1", "github") == refreshed
    assert await storage.get_upstream_token(tenant, "grant-1", "google") == upstream(
        tenant, "grant-1", "google"
    )


async def test_delete_upstream_tokens_removes_every_provider_of_that_grant_only(
    storage: Storage, tenant: str
) -> None:
    await storage.save_upstream_token(upstream(tenant, "grant-1", "github"))
    await storage.save_upstream_token(upstream(tenant, "grant-1", "google"))
    await storage.save_upstream_token(upstream(tenant, "grant-2", "github"))

    assert await storage.delete_upstream_tokens(tenant, "grant-1") == 2
    assert await storage.delete_upstream_tokens(tenant, "grant-1") == 0

    assert await storage.get_upstream_token(tenant, "grant-1", "github") is None
    assert await storage.get_upstream_token(tenant, "grant-1", "google") is None
    assert await storage.get_upstream_token(tenant, "grant-2", "github") == upstream(
        tenant, "grant-2", "github"
    )


async def test_revoke_grant_deletes_its_upstream_tokens_only(storage: Storage, tenant: str) -> None:
    await issue(storage, tenant, "grant-1")
    await issue(storage, tenant, "grant-2")
    await storage.save_upstream_token(upstream(tenant, "grant-1", "github"))
    await storage.save_upstream_token(upstream(tenant, "grant-1", "google"))
    await storage.save_upstream_token(upstream(tenant, "grant-2", "github"))
    await storage.save_upstream_token(upstream(tenant, "pending:ia-1", "github"))

    assert await storage.revoke_grant(tenant, "grant-1", NOW + 5) is True

    assert await storage.get_upstream_token(tenant, "grant-1", "github") is None
    assert await storage.get_upstream_token(tenant, "grant-1", "google") is None
    assert await storage.get_upstream_token(tenant, "grant-2", "github") == upstream(
        tenant, "grant-2", "github"
    )
    assert await storage.get_upstream_token(tenant, "pending:ia-1", "github") == upstream(
        tenant, "pending:ia-1", "github"
    )


async def test_revoking_an_unknown_or_revoked_grant_still_deletes_its_upstream_tokens(
    storage: Storage, tenant: str
) -> None:
    await storage.save_upstream_token(upstream(tenant, "no-such-grant"))
    await storage.save_upstream_token(upstream(tenant, "grant-1"))
    await storage.save_grant(grant(tenant, revoked_at=NOW))

    assert await storage.revoke_grant(tenant, "no-such-grant", NOW + 1) is False
    assert await storage.revoke_grant(tenant, "grant-1", NOW + 1) is False

    assert await storage.get_upstream_token(tenant, "no-such-grant", "github") is None
    assert await storage.get_upstream_token(tenant, "grant-1", "github") is None


async def test_an_upstream_token_of_a_revoked_grant_is_not_stored(
    storage: Storage, tenant: str
) -> None:
    await storage.save_grant(grant(tenant))
    await storage.revoke_grant(tenant, "grant-1", NOW)

    await storage.save_upstream_token(upstream(tenant))

    assert await storage.get_upstream_token(tenant, "grant-1", "github") is None


async def test_no_upstream_token_outlives_a_revocation_racing_with_saves(
    storage: Storage, tenant: str
) -> None:
    await storage.save_grant(grant(tenant))
    providers = [f"p{i}" for i in range(8)]

    await asyncio.gather(
        *(storage.save_upstream_token(upstream(tenant, provider=p)) for p in providers[:4]),
        storage.revoke_grant(tenant, "grant-1", NOW + 1),
        *(storage.save_upstream_token(upstream(tenant, provider=p)) for p in providers[4:]),
    )

    left = [await storage.get_upstream_token(tenant, "grant-1", p) for p in providers]
    assert left == [None] * 8


async def test_deleting_the_client_or_user_deletes_upstream_tokens_of_their_grants(
    storage: Storage, tenant: str
) -> None:
    await storage.save_client(client(tenant, "client-a"))
    await storage.save_user(user(tenant, "user-b"))
    await storage.save_grant(grant(tenant, "by-client", client_id="client-a"))
    await storage.save_grant(grant(tenant, "by-user", subject="user-b"))
    await storage.save_grant(grant(tenant, "bystander"))
    for grant_id in ("by-client", "by-user", "bystander"):
        await storage.save_upstream_token(upstream(tenant, grant_id))

    assert await storage.delete_client(tenant, "client-a") is True
    assert await storage.delete_user(tenant, "user-b") is True

    assert await storage.get_upstream_token(tenant, "by-client", "github") is None
    assert await storage.get_upstream_token(tenant, "by-user", "github") is None
    assert await storage.get_upstream_token(tenant, "bystander", "github") == upstream(
        tenant, "bystander"
    )


async def test_deleting_a_user_unlinks_their_upstream_identities(
    storage: Storage, tenant: str
) -> None:
    """Otherwise the next upstream login would map to a deleted local subject."""
    await storage.save_user(user(tenant))
    await storage.save_linked_identity(linked(tenant))
    await storage.save_linked_identity(linked(tenant, "github", "gh-9", subject="user-2"))

    assert await storage.delete_user(tenant, "user-1") is True

    assert await storage.get_linked_identity(tenant, "github", "gh-42") is None
    assert await storage.list_linked_identities(tenant, "user-1") == []
    assert await storage.get_linked_identity(tenant, "github", "gh-9") == linked(
        tenant, "github", "gh-9", subject="user-2"
    )


async def test_purge_drops_upstream_tokens_of_expired_grants_and_abandoned_logins(
    storage: Storage, tenant: str
) -> None:
    """A negative clock unique to this run, as in test_housekeeping."""
    now = -(time.time_ns() // 1000)
    await storage.save_grant(grant(tenant, "dead", expires_at=now))
    await storage.save_grant(grant(tenant, "live", expires_at=now + 1))
    await storage.save_upstream_token(upstream(tenant, "dead"))
    await storage.save_upstream_token(upstream(tenant, "live"))
    await storage.save_upstream_token(upstream(tenant, "pending:old", updated_at=now - 3600))
    await storage.save_upstream_token(upstream(tenant, "pending:new", updated_at=now - 3599))
    await storage.save_upstream_token(upstream(tenant, "no-grant-yet", updated_at=now - 9999))

    assert await storage.purge_expired(now) == 3  # 2 upstream tokens + the expired grant

    kept = {
        grant_id: await storage.get_upstream_token(tenant, grant_id, "github") is not None
        for grant_id in ("dead", "live", "pending:old", "pending:new", "no-grant-yet")
    }
    assert kept == {
        "dead": False,
        "live": True,
        "pending:old": False,
        "pending:new": True,
        "no-grant-yet": True,
    }


async def test_identities_and_upstream_tokens_are_per_tenant(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await storage.save_grant(grant(tenant))
    await storage.save_linked_identity(linked(tenant))
    await storage.save_upstream_token(upstream(tenant))
    b = other_tenant

    assert await storage.get_linked_identity(b, "github", "gh-42") is None
    assert await storage.list_linked_identities(b, "user-1") == []
    assert await storage.get_upstream_token(b, "grant-1", "github") is None
    assert await storage.delete_upstream_tokens(b, "grant-1") == 0
    assert await storage.revoke_grant(b, "grant-1", NOW) is False
    assert await storage.delete_user(b, "user-1") is False

    assert await storage.get_linked_identity(tenant, "github", "gh-42") == linked(tenant)
    assert await storage.get_upstream_token(tenant, "grant-1", "github") == upstream(tenant)
