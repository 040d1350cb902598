"""``ostiary users admin grant|revoke``: who may open the operator console (migration 0007)."""

from __future__ import annotations

from ostiary.core.storage import Storage
from tests.integration.test_pages_admin_cli import _storage_call, env, ostiary

__all__ = ["env"]


def _admin_flag(env: dict[str, str], username: str) -> bool:
    async def work(storage: Storage, tenant: str) -> bool:
        user = await storage.get_user_by_username(tenant, username)
        assert user is not None
        return user.admin

    return _storage_call(env, work)


def test_grant_and_revoke_admin(env: dict[str, str]) -> None:
    assert ostiary(env, "users", "add", "ada", "--password", "long enough pw")[0] == 0
    assert _admin_flag(env, "ada") is False

    code, out = ostiary(env, "users", "admin", "grant", "ada")
    assert (code, out) == (
        0,
        "ada is an administrator\nthey need a second factor first: ostiary users totp enable ada\n",
    )
    assert _admin_flag(env, "ada") is True
    code, out = ostiary(env, "users", "list")
    row = next(line for line in out.splitlines() if " ada " in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][5:7] == ["-", "admin"]

    assert ostiary(env, "users", "totp", "enable", "ada")[0] == 0
    code, out = ostiary(env, "users", "admin", "grant", "ada")
    assert (code, out) == (0, "ada is an administrator\n")

    code, out = ostiary(env, "users", "admin", "revoke", "ada")
    assert (code, out) == (0, "ada is no longer an administrator\n")
    assert _admin_flag(env, "ada") is False

    code, out = ostiary(env, "users", "admin", "grant", "nobody")
    assert (code, out) == (1, "error: no user 'nobody'\n")


def test_no_totp_needed_when_the_setting_says_so(env: dict[str, str]) -> None:
    env = {**env, "OSTIARY_SECURITY__ADMIN_REQUIRES_TOTP": "false"}
    assert ostiary(env, "users", "add", "bob", "--password", "long enough pw")[0] == 0
    assert ostiary(env, "users", "admin", "grant", "bob") == (0, "bob is an administrator\n")
