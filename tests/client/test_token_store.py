"""Token storage: keyed by issuer and resource, 0600 files, atomic replace."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from ostiary.client.keyring_store import KeyringTokenStore, default_token_store, keyring_available
from ostiary.client.registration import ClientRegistration
from ostiary.client.token_store import FileTokenStore, MemoryTokenStore, StoredGrant, TokenStore
from ostiary.client.tokens import TokenSet

A, B = "https://as-a.example", "https://as-b.example/tenant"
R = "https://mcp.example/mcp"
TOKENS = TokenSet(access_token="at", refresh_token="rt", scope="s", expires_at=100.0)
REG = ClientRegistration(issuer=A, client_id="cid", client_secret="sec")


class DictKeyring(keyring.backend.KeyringBackend):
    """A keyring backend that keeps secrets in a dict (the keyring API, no OS service)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.secrets[(service, username)]


@pytest.fixture
def os_keyring() -> Iterator[DictKeyring]:
    previous = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(params=["memory", "file", "keyring"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "keyring":
        request.getfixturevalue("os_keyring")
        return KeyringTokenStore()
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
    data = [store.path_for(A), store.path_for(B)]
    locks = [path.with_suffix(".lock") for path in data]
    assert [f.name for f in files] == sorted(path.name for path in data + locks)
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
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([store.path_for(A).name, store.path_for(A).with_suffix(".lock").name])
    assert (await store.get_tokens(A, R)).access_token == "at4"  # type: ignore[union-attr]


_WRITER = """
import asyncio, sys
from ostiary.client.token_store import FileTokenStore
from ostiary.client.tokens import TokenSet

async def main(directory, worker):
    store = FileTokenStore(directory)
    sys.stdin.readline()  # start together
    for n in range(15):
        tokens = TokenSet(access_token=f"at-{worker}-{n}", refresh_token="rt", scope="s")
        await store.save_tokens("https://as-a.example", f"https://mcp.example/{worker}/{n}", tokens)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_file_store_keeps_every_update_of_processes_writing_at_once(tmp_path: Path) -> None:
    """Four programs add different resources under one issuer at the same time: no update
    is lost (each read-modify-write holds the issuer's lock file)."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(worker)],
            stdin=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.close()
    assert [worker.wait(60) for worker in workers] == [0, 0, 0, 0]

    grants = await FileTokenStore(tmp_path).list_grants()

    assert sorted(
        (g.resource, g.tokens.access_token if g.tokens else None) for g in grants
    ) == sorted(
        (f"https://mcp.example/{w}/{n}", f"at-{w}-{n}") for w in range(4) for n in range(15)
    )


def test_default_store_uses_the_keyring_when_one_works(os_keyring: DictKeyring) -> None:
    assert keyring_available() is True
    assert isinstance(default_token_store(), KeyringTokenStore)


def test_default_store_falls_back_to_files(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        assert keyring_available() is False
        chosen = default_token_store()
        assert isinstance(chosen, FileTokenStore)
        assert chosen.directory.parts[-2:] == ("ostiary", "tokens")
    finally:
        keyring.set_keyring(previous)


def test_an_explicit_directory_means_files(os_keyring: DictKeyring, tmp_path: Path) -> None:
    chosen = default_token_store(tmp_path)
    assert isinstance(chosen, FileTokenStore)
    assert chosen.directory == tmp_path


async def test_keyring_entries_are_one_secret_each_plus_an_index(os_keyring: DictKeyring) -> None:
    store = KeyringTokenStore()
    await store.save_tokens(A, R, TOKENS)
    assert sorted(os_keyring.secrets) == [("ostiary", f'["{A}", "{R}"]'), ("ostiary", "index")]
    await store.delete_tokens(A, R)
    assert os_keyring.secrets == {("ostiary", "index"): "[]"}
