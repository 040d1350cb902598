"""Token storage: keyed by issuer and resource, 0600 files, atomic replace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ostiary.client.registration import ClientRegistration
from ostiary.client.token_store import FileTokenStore, MemoryTokenStore, StoredGrant, TokenStore
from ostiary.client.tokens import TokenSet

A, B = "https://as-a.example", "https://as-b.example/tenant"
R = "https://mcp.example/mcp"
TOKENS = TokenSet(access_token="at", refresh_token="rt", scope="s", expires_at=100.0)
REG = ClientRegistration(issuer=A, client_id="cid", client_secret="sec")


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    return MemoryTokenStore() if request.param == "memory" else FileTokenStore(tmp_path / "t")


async def test_tokens_are_keyed_by_issuer_and_resource(store: TokenStore) -> None:
    await store.save_tokens(A, R, TOKENS)
    assert await store.get_tokens(A, R) == TOKENS
    assert await store.get_tokens(B, R) is None
    assert await store.get_tokens(A, R + "2") is None


async def test_registration_is_bound_to_its_issuer(store: TokenStore) -> None:
    await store.save_registration(R, REG)
    assert await store.get_registration(A, R) == REG
    assert await store.get_registration(B, R) is None


async def test_delete_and_list(store: TokenStore) -> None:
    await store.save_tokens(A, R, TOKENS)
    await store.save_registration(R, REG)
    await store.save_tokens(B, R, TOKENS)
    assert await store.list_grants() == [
        StoredGrant(A, R, TOKENS, REG),
        StoredGrant(B, R, TOKENS, None),
    ]
    await store.delete_tokens(A, R)
    await store.delete_registration(A, R)
    assert await store.list_grants() == [StoredGrant(B, R, TOKENS, None)]


async def test_file_store_writes_one_private_file_per_issuer(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    await store.save_tokens(A, R, TOKENS)
    await store.save_tokens(B, R, TOKENS)
    files = sorted((tmp_path / "tokens").iterdir())
    assert [f.name for f in files] == sorted([store.path_for(A).name, store.path_for(B).name])
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(os.stat(tmp_path / "tokens").st_mode) == 0o700
    assert store.path_for(B).name.startswith("as-b.example_tenant-")


async def test_file_store_treats_a_corrupt_file_as_empty(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.path_for(A).write_text("{corrupt")
    assert await store.get_tokens(A, R) is None
    await store.save_tokens(A, R, TOKENS)
    assert await store.get_tokens(A, R) == TOKENS


async def test_file_store_ignores_a_file_for_another_issuer(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.path_for(A).write_text('{"issuer": "https://other", "resources": {}}')
    assert await store.get_tokens(A, R) is None


async def test_file_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    for n in range(5):
        await store.save_tokens(A, R, TOKENS.model_copy(update={"access_token": f"at{n}"}))
    assert [p.name for p in tmp_path.iterdir()] == [store.path_for(A).name]
    assert (await store.get_tokens(A, R)).access_token == "at4"  # type: ignore[union-attr]
