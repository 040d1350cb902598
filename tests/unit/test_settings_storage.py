"""Where the default database lives, and that an explicit storage URL always wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from ostiary.settings import Settings


def test_default_database_is_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, dev={"enabled": True}, data_dir=tmp_path)
    assert settings.storage.url == f"sqlite:///{tmp_path}/ostiary.db"


def test_explicit_storage_url_wins_over_data_dir(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        dev={"enabled": True},
        data_dir=tmp_path,
        storage={"url": "postgresql://db.example/ostiary"},
    )
    assert settings.storage.url == "postgresql://db.example/ostiary"


def test_storage_url_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTIARY_STORAGE__URL", "memory://")
    monkeypatch.setenv("OSTIARY_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None, dev={"enabled": True})
    assert settings.storage.url == "memory://"
