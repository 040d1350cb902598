"""The demo MCP server's per-user notes and API usage counters (NoteStore)."""

from __future__ import annotations

import asyncio

from ostiary.storage import Storage

from .records import NOW, note


async def test_note_round_trips_with_every_field(storage: Storage, tenant: str) -> None:
    saved = note(tenant, title="", content="x" * 5000, created_at=NOW - 7)
    await storage.save_note(saved)

    assert await storage.get_note(tenant, "user-1", "note-1") == saved
    assert await storage.get_note(tenant, "user-1", "note-2") is None


async def test_a_note_is_invisible_to_another_subject(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant))

    assert await storage.get_note(tenant, "user-2", "note-1") is None
    assert await storage.list_notes(tenant, "user-2") == []
    assert await storage.delete_note(tenant, "user-2", "note-1") is False
    assert await storage.get_note(tenant, "user-1", "note-1") == note(tenant)


async def test_the_same_note_id_of_two_subjects_never_collides(
    storage: Storage, tenant: str
) -> None:
    """The owner is part of the key: saving cannot overwrite another subject's note."""
    alice = note(tenant, subject="user-1", title="alice's")
    bob = note(tenant, subject="user-2", title="bob's")
    await storage.save_note(alice)
    await storage.save_note(bob)

    assert await storage.get_note(tenant, "user-1", "note-1") == alice
    assert await storage.get_note(tenant, "user-2", "note-1") == bob
    assert await storage.delete_note(tenant, "user-2", "note-1") is True
    assert await storage.get_note(tenant, "user-1", "note-1") == alice


async def test_save_note_replaces_the_subjects_note(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant))
    await storage.save_note(note(tenant, title="Edited", content="new", created_at=NOW + 1))

    assert await storage.list_notes(tenant, "user-1") == [
        note(tenant, title="Edited", content="new", created_at=NOW + 1)
    ]


async def test_list_notes_is_the_subjects_notes_oldest_first(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant, "c", created_at=NOW + 5))
    await storage.save_note(note(tenant, "b", created_at=NOW))
    await storage.save_note(note(tenant, "a", created_at=NOW))
    await storage.save_note(note(tenant, "z", created_at=NOW - 5))
    await storage.save_note(note(tenant, "other", subject="user-2", created_at=NOW - 9))

    listed = await storage.list_notes(tenant, "user-1")

    assert [n.note_id for n in listed] == ["z", "a", "b", "c"]
    assert listed[0] == note(tenant, "z", created_at=NOW - 5)


async def test_delete_note_is_true_once(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant))

    assert await storage.delete_note(tenant, "user-1", "note-1") is True
    assert await storage.delete_note(tenant, "user-1", "note-1") is False
    assert await storage.get_note(tenant, "user-1", "note-1") is None
    assert await storage.list_notes(tenant, "user-1") == []


async def test_concurrent_note_deletes_have_one_winner(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant))

    results = await asyncio.gather(
        *(storage.delete_note(tenant, "user-1", "note-1") for _ in range(10))
    )

    assert sorted(results) == [False] * 9 + [True]


async def test_record_usage_counts_per_subject_and_name(storage: Storage, tenant: str) -> None:
    counts = [
        await storage.record_usage(tenant, "user-1", "echo", NOW),
        await storage.record_usage(tenant, "user-1", "echo", NOW + 1),
        await storage.record_usage(tenant, "user-1", "get_time", NOW + 2),
        await storage.record_usage(tenant, "user-2", "echo", NOW + 3),
        await storage.record_usage(tenant, "user-1", "echo", NOW + 4),
    ]

    assert counts == [1, 2, 1, 1, 3]
    assert await storage.get_usage(tenant, "user-1") == {"echo": 3, "get_time": 1}
    assert await storage.get_usage(tenant, "user-2") == {"echo": 1}
    assert await storage.get_usage(tenant, "user-3") == {}


async def test_get_usage_lists_names_in_order(storage: Storage, tenant: str) -> None:
    for name in ("zeta", "alpha", "mid"):
        await storage.record_usage(tenant, "user-1", name, NOW)

    assert list(await storage.get_usage(tenant, "user-1")) == ["alpha", "mid", "zeta"]


async def test_twenty_concurrent_usages_are_all_counted(storage: Storage, tenant: str) -> None:
    """record_usage is one atomic upsert: no lost update under concurrency."""
    counts = await asyncio.gather(
        *(storage.record_usage(tenant, "user-1", "echo", NOW) for _ in range(20))
    )

    assert sorted(counts) == list(range(1, 21))
    assert await storage.get_usage(tenant, "user-1") == {"echo": 20}


async def test_notes_and_usage_are_per_tenant(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await storage.save_note(note(tenant))
    await storage.record_usage(tenant, "user-1", "echo", NOW)

    assert await storage.get_note(other_tenant, "user-1", "note-1") is None
    assert await storage.list_notes(other_tenant, "user-1") == []
    assert await storage.delete_note(other_tenant, "user-1", "note-1") is False
    assert await storage.get_usage(other_tenant, "user-1") == {}
    assert await storage.record_usage(other_tenant, "user-1", "echo", NOW) == 1

    assert await storage.get_note(tenant, "user-1", "note-1") == note(tenant)
    assert await storage.get_usage(tenant, "user-1") == {"echo": 1}


async def test_purge_keeps_notes_and_usage(storage: Storage, tenant: str) -> None:
    await storage.save_note(note(tenant, created_at=1))
    await storage.record_usage(tenant, "user-1", "echo", 1)

    await storage.purge_expired(NOW)

    assert await storage.get_note(tenant, "user-1", "note-1") == note(tenant, created_at=1)
    assert await storage.get_usage(tenant, "user-1") == {"echo": 1}
