"""The one issuer rule and remembered dev mode (settings.resolve_issuer, DEV_MARKER).

``ostiary serve``, ``gateway`` and ``check-config`` resolve the issuer with the same function
and print the same line; these tests run the real CLI in a subprocess-free way (typer's
runner) with a clean environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ostiary.cli.main import app
from ostiary.errors import ConfigurationError
from ostiary.settings import DEV_MARKER, Settings, load_settings, resolve_issuer


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OSTIARY_ variable from the caller, no .env, a fresh working directory."""
    for key in list(os.environ):
        if key.startswith("OSTIARY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _resolve(**overrides: object) -> tuple[Settings, str]:
    return resolve_issuer(load_settings(**overrides), dict(overrides))


def test_an_explicit_issuer_wins_over_the_bind_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTIARY_ISSUER", "http://localhost:7000")
    settings, source = _resolve(dev={"enabled": True}, server={"port": 9123})
    assert settings.issuer == "http://localhost:7000"
    assert source == "set explicitly: OSTIARY_ISSUER, .env or --issuer"


def test_in_dev_mode_an_unset_issuer_follows_the_bind_address() -> None:
    settings, source = _resolve(dev={"enabled": True}, server={"host": "::1", "port": 9123})
    assert settings.issuer == "http://[::1]:9123"
    assert source == "derived from the bind address [::1]:9123 in dev mode"


def test_a_derived_issuer_on_a_public_bind_address_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http is allowed only for loopback hosts"):
        _resolve(dev={"enabled": True}, server={"host": "0.0.0.0", "port": 9123})


def test_the_dev_marker_turns_dev_mode_on_for_its_data_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is plain http"):
        load_settings()
    (tmp_path / ".ostiary").mkdir()
    (tmp_path / ".ostiary" / DEV_MARKER).write_text("dev")
    settings = load_settings()
    assert settings.dev.enabled is True
    assert settings.relaxed_checks()[-1] == (
        f"dev mode is remembered in {Path('.ostiary') / DEV_MARKER} "
        "(delete it, or set OSTIARY_DEV__ENABLED=false, to turn dev mode off)"
    )


def test_an_explicit_dev_setting_wins_over_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".ostiary").mkdir()
    (tmp_path / ".ostiary" / DEV_MARKER).write_text("dev")
    monkeypatch.setenv("OSTIARY_DEV__ENABLED", "false")
    with pytest.raises(ConfigurationError, match="is plain http"):
        load_settings()


def test_check_config_prints_the_issuer_serve_would_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTIARY_DEV__ENABLED", "true")
    runner = CliRunner()
    derived = runner.invoke(app, ["check-config", "--port", "9123"])
    monkeypatch.setenv("OSTIARY_ISSUER", "http://127.0.0.1:8000")
    explicit = runner.invoke(app, ["check-config", "--port", "9123"])
    assert derived.exit_code == 0, derived.output
    assert explicit.exit_code == 0, explicit.output
    line = re.compile(r"^issuer (\S+) \((.+)\)$", re.MULTILINE)
    assert line.findall(derived.output) == [
        ("http://127.0.0.1:9123", "derived from the bind address 127.0.0.1:9123 in dev mode")
    ]
    assert line.findall(explicit.output) == [
        ("http://127.0.0.1:8000", "set explicitly: OSTIARY_ISSUER, .env or --issuer")
    ]
