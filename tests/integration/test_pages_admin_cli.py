"""``ostiary users …`` and ``ostiary clients …``: the administration the pages rely on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from ostiary.cli.main import app
from ostiary.core import totp
from ostiary.core.models import Client, Grant, User
from ostiary.core.storage import Storage
from ostiary.core.users import open_totp_secret
from ostiary.settings import Settings
from ostiary.storage import open_storage
from ostiary.storage_key import storage_cipher

runner = CliRunner()
T = TypeVar("T")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "OSTIARY_STORAGE__URL": f"sqlite:///{tmp_path}/cli.db",
        "OSTIARY_DATA_DIR": str(tmp_path),
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "COLUMNS": "250",
    }


def ostiary(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        _env_file=None,
        storage={"url": env["OSTIARY_STORAGE__URL"]},
        data_dir=env["OSTIARY_DATA_DIR"],
        dev={"enabled": True},
    )


def _storage_call(env: dict[str, str], work: Callable[[Storage, str], Awaitable[T]]) -> T:
    settings = _settings(env)

    async def run() -> T:
        storage = open_storage(settings)
        try:
            await storage.initialize()
            return await work(storage, settings.storage.tenant)
        finally:
            await storage.close()

    return asyncio.run(run())


def test_user_lifecycle(env: dict[str, str]) -> None:
    code, out = ostiary(
        env, "users", "add", "ada", "--password", "long enough pw", "--display-name", "Ada L"
    )
    assert code == 0, out
    assert out.startswith("created user ada (subject ")

    code, out = ostiary(env, "users", "add", "ada", "--password", "long enough pw")
    assert (code, out) == (1, "error: user 'ada' already exists\n")

    code, out = ostiary(env, "users", "add", "bob", "--password", "short")
    assert (code, out) == (1, "error: password must be 8 to 1024 characters\n")

    code, out = ostiary(env, "users", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if " ada " in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:2] == ["ada", "Ada L"]
    assert "active" in row

    code, out = ostiary(env, "users", "disable", "ada")
    assert (code, out) == (0, "disabled ada; revoked 0 grant(s)\n")
    code, out = ostiary(env, "users", "list")
    assert "disabled" in next(line for line in out.splitlines() if " ada " in line)
    code, out = ostiary(env, "users", "enable", "ada")
    assert (code, out) == (0, "enabled ada\n")

    code, out = ostiary(env, "users", "passwd", "ada", "--password", "another long pw")
    assert (code, out) == (0, "password changed for ada\n")

    code, out = ostiary(env, "users", "remove", "ada")
    assert (code, out) == (0, "removed user ada\n")
    code, out = ostiary(env, "users", "remove", "ada")
    assert (code, out) == (1, "error: no user 'ada'\n")


def test_users_add_and_passwd_hash_with_the_configured_parameters(env: dict[str, str]) -> None:
    """security.password_hash reaches the CLI: argon2's minimum here (dev mode), else RFC 9106."""

    async def stored_hash(storage: Storage, tenant: str) -> str:
        user = await storage.get_user_by_username(tenant, "ada")
        assert user is not None
        return user.password_hash

    assert ostiary(env, "users", "add", "ada", "--password", "long enough pw")[0] == 0
    first = _storage_call(env, stored_hash)
    assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert ostiary(env, "users", "passwd", "ada", "--password", "another long pw")[0] == 0
    second = _storage_call(env, stored_hash)
    assert second.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert second != first


def test_the_cli_refuses_cheap_password_hashing_without_dev_mode(env: dict[str, str]) -> None:
    production = {**env, "OSTIARY_DEV__ENABLED": "false", "OSTIARY_ISSUER": "https://as.example"}
    code, out = ostiary(production, "users", "add", "ada", "--password", "long enough pw")
    assert (code, out) == (
        1,
        "error: invalid settings:\n  settings: Value error, security.password_hash "
        "'insecure-test' is for test suites and needs dev mode (dev.enabled); production "
        "hashes with 'rfc9106'\n",
    )
    assert ostiary(env, "users", "list")[1].count(" ada ") == 0


def test_revoke_grants_and_disable_revoke_every_grant(env: dict[str, str]) -> None:
    assert ostiary(env, "users", "add", "ada", "--password", "long enough pw")[0] == 0

    async def add_grants(storage: Storage, tenant: str) -> str:
        user = await storage.get_user_by_username(tenant, "ada")
        assert user is not None
        for n in range(2):
            await storage.save_grant(
                Grant(tenant, f"g{n}", f"client{n}", user.user_id, ("mcp:read",), None, 0, 2**40)
            )
        return user.user_id

    subject = _storage_call(env, add_grants)
    _code, out = ostiary(env, "users", "list")
    assert next(line for line in out.splitlines() if " ada " in line).rstrip(" │").endswith("2")
    assert ostiary(env, "users", "revoke-grants", "ada") == (0, "revoked 2 grant(s) of ada\n")

    async def live(storage: Storage, tenant: str) -> list[Grant]:
        return await storage.list_grants(tenant, subject)

    assert _storage_call(env, live) == []
    assert ostiary(env, "users", "revoke-grants", "ada") == (0, "revoked 0 grant(s) of ada\n")


def test_totp_enable_stores_the_secret_it_prints_and_disable_removes_it(
    env: dict[str, str],
) -> None:
    assert ostiary(env, "users", "add", "ada", "--password", "long enough pw")[0] == 0

    async def stored(storage: Storage, tenant: str) -> User | None:
        return await storage.get_user_by_username(tenant, "ada")

    code, out = ostiary(env, "users", "totp", "enable", "ada")
    assert code == 0, out
    heading, uri = out.splitlines()
    assert heading == "TOTP enabled for ada. Add this to an authenticator app:"
    query = parse_qs(urlsplit(uri).query)
    assert uri.startswith("otpauth://totp/")
    ada = _storage_call(env, stored)
    assert ada is not None
    # Stored sealed with the key file the CLI made in data_dir; it opens to the printed secret.
    assert ada.totp_secret is not None
    assert ada.totp_secret.startswith("v1.")
    cipher = storage_cipher(_settings(env))
    secret = open_totp_secret(ada, cipher)
    assert secret == query["secret"][0]
    assert query["secret"][0] not in ada.totp_secret
    assert totp.verify(secret, totp.totp(secret, 1_900_000_000), 1_900_000_000)
    _code, listing = ostiary(env, "users", "list")
    assert "totp" in next(line for line in listing.splitlines() if " ada " in line)

    assert ostiary(env, "users", "totp", "disable", "ada") == (0, "TOTP disabled for ada\n")
    after = _storage_call(env, stored)
    assert after is not None
    assert after.totp_secret is None
    assert after == replace(ada, totp_secret=None)
    _code, listing = ostiary(env, "users", "list")
    assert "totp" not in next(line for line in listing.splitlines() if " ada " in line)
    assert ostiary(env, "users", "totp", "enable", "nobody") == (1, "error: no user 'nobody'\n")


def test_client_lifecycle(env: dict[str, str]) -> None:
    code, out = ostiary(
        env,
        "clients",
        "add",
        "--name",
        "Notebook",
        "--redirect-uri",
        "http://127.0.0.1:7000/cb",
        "--logo-uri",
        "https://cdn.example.com/n.png",
        "--client-uri",
        "https://notebook.example.com",
        "--application-type",
        "native",
    )
    assert code == 0, out
    client_id = json.loads(out)["client_id"]

    async def stored(storage: Storage, tenant: str) -> Client | None:
        return await storage.get_client(tenant, client_id)

    client = _storage_call(env, stored)
    assert client is not None
    assert (client.client_name, client.logo_uri, client.client_uri, client.source) == (
        "Notebook",
        "https://cdn.example.com/n.png",
        "https://notebook.example.com",
        "static",
    )
    code, out = ostiary(env, "clients", "list")
    assert code == 0
    assert client_id in out
    assert "native" in out
    assert "enabled" in out
    assert ostiary(env, "clients", "disable", client_id) == (0, f"disabled client {client_id}\n")
    assert _storage_call(env, stored) == replace(client, disabled=True)
    assert "disabled" in ostiary(env, "clients", "list")[1]
    assert ostiary(env, "clients", "enable", client_id) == (0, f"enabled client {client_id}\n")
    assert _storage_call(env, stored) == client
    assert ostiary(env, "clients", "remove", client_id) == (0, f"removed client {client_id}\n")
    assert ostiary(env, "clients", "remove", client_id) == (1, f"error: no client {client_id!r}\n")


def test_check_config_names_the_storage_key_without_making_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    key_file = tmp_path / "storage.key"
    code, out = ostiary(env, "check-config")
    assert code == 0, out
    assert f"secrets at rest: sealed with the key file {key_file} (created on first start)" in out
    assert not key_file.exists()
    assert ostiary(env, "keys", "rotate")[0] == 0  # the first key to seal makes the key file
    assert key_file.exists()
    assert f"sealed with the key file {key_file}\n" in ostiary(env, "check-config")[1]
    configured = {**env, "OSTIARY_STORAGE__ENCRYPTION_KEY": "A" * 43 + "="}
    assert "sealed with storage.encryption_key\n" in ostiary(configured, "check-config")[1]


def test_serve_refuses_a_demo_scope_the_server_does_not_support(env: dict[str, str]) -> None:
    """Before binding the port: one error line, exit 1."""
    code, out = ostiary({**env, "OSTIARY_DEMO__READ_SCOPE": "notes:read"}, "serve")
    assert code == 1
    assert out.endswith(
        "error: demo scope(s) notes:read not in scopes.supported (mcp:read, mcp:write, "
        "offline_access): add them there (OSTIARY_SCOPES__SUPPORTED)\n"
    )


def test_disabling_unknown_clients(env: dict[str, str]) -> None:
    """An unknown id is an error; a metadata-document URL gets a block entry (its client is
    resolved from the document, never stored), and enabling it clears the flag."""
    assert ostiary(env, "clients", "disable", "nope") == (1, "error: no client 'nope'\n")
    assert ostiary(env, "clients", "enable", "nope") == (1, "error: no client 'nope'\n")
    url = "https://app.example.com/oauth/client.json"

    async def stored(storage: Storage, tenant: str) -> Client | None:
        return await storage.get_client(tenant, url)

    assert ostiary(env, "clients", "disable", url) == (0, f"disabled client {url}\n")
    blocked = _storage_call(env, stored)
    assert blocked is not None
    assert (blocked.source, blocked.disabled, blocked.redirect_uris) == ("cimd", True, ())
    assert ostiary(env, "clients", "enable", url) == (0, f"enabled client {url}\n")
    assert _storage_call(env, stored) == replace(blocked, disabled=False)


def test_client_with_an_http_logo_is_refused(env: dict[str, str]) -> None:
    code, out = ostiary(
        env,
        "clients",
        "add",
        "--name",
        "X",
        "--redirect-uri",
        "http://127.0.0.1:7000/cb",
        "--logo-uri",
        "http://cdn.example.com/n.png",
    )
    assert (code, out) == (1, "error: logo_uri must be an https URL\n")
