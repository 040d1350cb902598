"""Shared fixtures: settings built per test, never from a global."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ostiary.settings import Settings


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings with dev mode on, storage in memory, and per-test overrides."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "issuer": "http://127.0.0.1:8000",
            "data_dir": tmp_path / "data",
            "dev": {"enabled": True},
            "storage": {"url": "memory://"},
        }
        base.update(overrides)
        return Settings(_env_file=None, **base)  # type: ignore[call-arg]

    return build
