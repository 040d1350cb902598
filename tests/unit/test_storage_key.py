"""Where the storage encryption key comes from: the setting, or ``<data_dir>/storage.key``."""

from __future__ import annotations

import base64
import multiprocessing
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ostiary.core.cipher import SecretCipher
from ostiary.errors import ConfigurationError
from ostiary.settings import Settings, load_settings
from ostiary.storage_key import load_or_create_key_file, storage_cipher

KEY = base64.b64encode(bytes(range(32))).decode()


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "storage.key"
    key = load_or_create_key_file(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == base64.b64encode(key).decode() + "\n"
    assert load_or_create_key_file(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["storage.key"]  # no temporary left


def test_the_process_losing_the_race_reads_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the file between our read and our link: EEXIST, use theirs."""
    path = tmp_path / "storage.key"
    winner = bytes(range(32))
    real_link = os.link

    def link_after_the_winner(src: Any, dst: Any) -> None:
        Path(dst).write_text(base64.b64encode(winner).decode() + "\n")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_the_winner)
    assert load_or_create_key_file(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["storage.key"]


def _create(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(load_or_create_key_file(Path(path)))


def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    processes = 6
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_create, args=(str(path), barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    keys = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len(set(keys)) == 1
    assert base64.b64decode(path.read_text()) == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["storage.key"]


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    path.write_text(base64.b64encode(bytes(16)).decode())
    with pytest.raises(ConfigurationError) as caught:
        load_or_create_key_file(path)
    assert str(caught.value) == (
        f"the storage key file {path} does not hold a key (32 bytes, base64); restore it from "
        "a backup, or set storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY)"
    )
    path.write_text("not base64 at all!")
    with pytest.raises(ConfigurationError, match="does not hold a key"):
        load_or_create_key_file(path)


def test_the_setting_wins_and_no_file_is_made(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(
        storage={"url": f"sqlite:///{tmp_path}/db.sqlite", "encryption_key": KEY}
    )
    cipher = storage_cipher(settings)
    assert cipher.source == "storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY)"
    sealed = cipher.encrypt("x", "ctx")
    assert SecretCipher(bytes(range(32))).decrypt(sealed, "ctx") == "x"
    assert not (settings.data_dir / "storage.key").exists()


def test_without_the_setting_the_key_file_in_data_dir(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(storage={"url": f"sqlite:///{tmp_path}/db.sqlite"})
    first = storage_cipher(settings)
    path = settings.data_dir / "storage.key"
    assert first.source == f"the key file {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert storage_cipher(settings).decrypt(first.encrypt("x", "ctx"), "ctx") == "x"


def test_memory_storage_writes_no_key_file(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    assert settings.storage.url == "memory://"
    sealed = storage_cipher(settings).encrypt("x", "ctx")
    assert storage_cipher(settings).decrypt(sealed, "ctx") == "x"  # one key per process
    assert not settings.data_dir.exists()


@pytest.mark.parametrize("value", [base64.b64encode(bytes(31)).decode(), "%%%", ""])
def test_setting_must_be_32_bytes_of_base64(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            _env_file=None,
            dev={"enabled": True},
            data_dir=tmp_path,
            storage={"encryption_key": value},
        )
    assert str(caught.value) == (
        "invalid settings:\n  storage: Value error, storage.encryption_key "
        "(OSTIARY_STORAGE__ENCRYPTION_KEY) must be 32 bytes, base64-encoded; make one with "
        "`openssl rand -base64 32`"
    )


def test_setting_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTIARY_STORAGE__ENCRYPTION_KEY", KEY)
    settings = Settings(_env_file=None, dev={"enabled": True}, data_dir=tmp_path)
    assert settings.storage.encryption_key is not None
    assert settings.storage.encryption_key.get_secret_value() == KEY
    assert KEY not in repr(settings)
