"""Shared fixtures: settings built per test, never from a global; the Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ostiary.settings import Settings

# CI and `make test` on a loaded 2-core machine: the same properties with the same example
# counts, but derandomized (a failure reproduces exactly) and judged on the property, not on
# how fast the machine generated inputs while other work ran. HYPOTHESIS_PROFILE=dev keeps
# Hypothesis' defaults for exploring locally.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: Passwords in tests hash at argon2's minimum cost (production refuses it without dev mode):
#: at full strength each user a fixture creates costs a third of a second of CPU.
FAST_PASSWORD_HASH: dict[str, Any] = {"password_hash": "insecure-test"}


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings with dev mode on, storage in memory, cheap password hashing, and
    per-test overrides (a ``security`` dict is merged with the cheap hashing)."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "issuer": "http://127.0.0.1:8000",
            "data_dir": tmp_path / "data",
            "dev": {"enabled": True},
            "storage": {"url": "memory://"},
            "security": FAST_PASSWORD_HASH,
        }
        if isinstance(overrides.get("security"), dict):
            overrides["security"] = {**FAST_PASSWORD_HASH, **overrides["security"]}
        base.update(overrides)
        return Settings(_env_file=None, **base)

    return build
