"""argon2id password hashing, injected: full strength by default (RFC 9106 §4), cheap in tests."""

from __future__ import annotations

from base64 import b64encode
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.core.passwords import INSECURE_TEST, RFC9106, PasswordHashing, password_hashing
from ostiary.core.users import authenticate_user, new_user
from ostiary.errors import ConfigurationError
from ostiary.settings import Settings, load_settings
from ostiary.storage.memory import MemoryStorage
from tests.helpers.context import build_context

TENANT = "t1"
PASSWORD = "correct horse battery"
#: What ``INSECURE_TEST`` makes: argon2's minimum cost.
WEAK_PREFIX = "$argon2id$v=19$m=8,t=1,p=1$"
#: What production makes: RFC 9106 §4's second recommended option.
STRONG_PREFIX = "$argon2id$v=19$m=65536,t=3,p=4$"


def _production(**overrides: Any) -> Settings:
    return Settings(
        _env_file=None, issuer="https://auth.example.com", storage={"url": "memory://"}, **overrides
    )


# -- the defaults and the setting ------------------------------------------------------------


def test_production_hashes_at_rfc9106_strength() -> None:
    """RFC 9106 §4 / OWASP: argon2id, t=3, m=64 MiB, p=4, 128-bit salt, 256-bit tag."""
    assert PasswordHashing() == RFC9106
    assert (RFC9106.time_cost, RFC9106.memory_cost, RFC9106.parallelism) == (3, 65536, 4)
    assert (RFC9106.salt_len, RFC9106.hash_len) == (16, 32)
    assert password_hashing("rfc9106") is RFC9106
    settings = _production()
    assert settings.security.password_hash == "rfc9106"
    assert settings.relaxed_checks() == []


async def test_a_production_context_hashes_at_full_strength(tmp_path: Path) -> None:
    settings = _production(data_dir=tmp_path)
    ctx = build_context(settings, MemoryStorage())
    assert ctx.passwords is RFC9106
    user = await new_user(TENANT, "ada", PASSWORD, 1, hashing=ctx.passwords)
    assert user.password_hash.startswith(STRONG_PREFIX)
    assert await ctx.passwords.hash(PASSWORD) != user.password_hash  # a fresh salt each time


def test_production_refuses_the_insecure_test_profile() -> None:
    with pytest.raises(ValidationError) as caught:
        _production(security={"password_hash": "insecure-test"})
    assert caught.value.errors()[0]["msg"] == (
        "Value error, security.password_hash 'insecure-test' is for test suites and needs dev "
        "mode (dev.enabled); production hashes with 'rfc9106'"
    )


def test_production_refuses_the_insecure_test_profile_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OSTIARY_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("OSTIARY_SECURITY__PASSWORD_HASH", "insecure-test")
    with pytest.raises(ConfigurationError, match=r"security\.password_hash 'insecure-test'"):
        load_settings()


def test_dev_mode_honours_the_insecure_test_profile_and_says_so(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        dev={"enabled": True},
        storage={"url": "memory://"},
        security={"password_hash": "insecure-test"},
    )
    assert build_context(settings, MemoryStorage()).passwords is INSECURE_TEST
    assert settings.relaxed_checks()[-1] == (
        "passwords are hashed at argon2's minimum cost (security.password_hash='insecure-test')"
    )
    assert ServerContext.passwords is RFC9106  # a context built by hand: full strength


# -- hashing and verifying -------------------------------------------------------------------


def test_a_hash_verifies_whatever_parameters_made_it() -> None:
    weak = INSECURE_TEST.hash_sync(PASSWORD)
    assert weak.startswith(WEAK_PREFIX)
    assert RFC9106.verify_sync(weak, PASSWORD) is True
    assert RFC9106.verify_sync(weak, PASSWORD + "!") is False
    older = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)
    assert INSECURE_TEST.verify_sync(older, PASSWORD) is True


@pytest.mark.parametrize("stored", ["!federated", "", "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$"])
def test_a_value_that_is_no_argon2_hash_never_matches(stored: str) -> None:
    assert INSECURE_TEST.verify_sync(stored, PASSWORD) is False


def _encoded(kind: str, m: int, t: int, p: int, salt_len: int = 16, hash_len: int = 32) -> str:
    """An argon2 hash string with these parameters (PHC format); the parameters are all
    ``needs_rehash`` reads, so no memory-hard hash is computed."""
    salt, tag = (b64encode(bytes(n)).decode().rstrip("=") for n in (salt_len, hash_len))
    return f"${kind}$v=19$m={m},t={t},p={p}${salt}${tag}"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (_encoded("argon2id", 8, 1, 1), True),  # the test profile
        (_encoded("argon2id", 19456, 2, 1), True),  # OWASP's minimum
        (_encoded("argon2i", 65536, 3, 4), True),
        (_encoded("argon2id", 65536, 3, 4, salt_len=8), True),
        (_encoded("argon2id", 65536, 3, 4, hash_len=16), True),
        (_encoded("argon2id", 65536, 3, 4), False),
        (_encoded("argon2id", 65536, 3, 1), False),  # fewer lanes cost an attacker nothing
        (_encoded("argon2id", 131072, 4, 4), False),  # stronger: kept
    ],
)
def test_needs_rehash_only_when_weaker_than_the_configuration(encoded: str, expected: bool) -> None:
    assert RFC9106.needs_rehash(encoded) is expected


def test_the_encoded_helper_matches_what_argon2_writes() -> None:
    made = INSECURE_TEST.hash_sync(PASSWORD)
    assert made.rsplit("$", 2)[0] == _encoded("argon2id", 8, 1, 1).rsplit("$", 2)[0]
    assert [len(part) for part in made.split("$")[-2:]] == [22, 43]
    assert [len(part) for part in _encoded("argon2id", 8, 1, 1).split("$")[-2:]] == [22, 43]


def test_needs_rehash_for_an_older_argon2_version() -> None:
    current = INSECURE_TEST.hash_sync(PASSWORD)
    assert INSECURE_TEST.needs_rehash(current) is False
    assert INSECURE_TEST.needs_rehash(current.replace("$v=19$", "$v=16$")) is True


def test_the_test_profile_never_downgrades_a_hash() -> None:
    assert INSECURE_TEST.needs_rehash(RFC9106.hash_sync(PASSWORD)) is False
    assert INSECURE_TEST.needs_rehash("!federated") is False


# -- sign-in: the upgrade on login -----------------------------------------------------------


async def _stored_user(
    storage: MemoryStorage, hashing: PasswordHashing, *, disabled: bool = False
) -> User:
    user = replace(await new_user(TENANT, "ada", PASSWORD, 1, hashing=hashing), disabled=disabled)
    await storage.save_user(user)
    return user


async def test_login_upgrades_a_weak_hash_to_the_configured_strength() -> None:
    storage = MemoryStorage()
    weak = await _stored_user(storage, INSECURE_TEST)
    user = await authenticate_user(storage, TENANT, "ada", PASSWORD, RFC9106)
    assert user is not None
    assert user.password_hash.startswith(STRONG_PREFIX)
    assert user == replace(weak, password_hash=user.password_hash)
    assert await storage.get_user(TENANT, weak.user_id) == user
    assert RFC9106.verify_sync(user.password_hash, PASSWORD) is True
    again = await authenticate_user(storage, TENANT, "ada", PASSWORD, RFC9106)
    assert again == user  # strong now: not hashed a second time


async def test_login_keeps_a_hash_as_strong_as_the_configuration() -> None:
    storage = MemoryStorage()
    stored = await _stored_user(storage, INSECURE_TEST)
    assert await authenticate_user(storage, TENANT, "ada", PASSWORD, INSECURE_TEST) == stored
    assert await storage.get_user(TENANT, stored.user_id) == stored


@pytest.mark.parametrize(
    ("username", "password", "disabled"),
    [
        ("ada", "wrong password", False),
        ("bob", PASSWORD, False),
        ("ada", PASSWORD, True),
        ("ada", "x" * 1025, False),
        ("a" * 257, PASSWORD, False),
    ],
)
async def test_a_refused_login_returns_none_and_rehashes_nothing(
    username: str, password: str, disabled: bool
) -> None:
    storage = MemoryStorage()
    stored = await _stored_user(storage, INSECURE_TEST, disabled=disabled)
    assert await authenticate_user(storage, TENANT, username, password, RFC9106) is None
    assert await storage.get_user(TENANT, stored.user_id) == stored


class _ChangedMeanwhile(MemoryStorage):
    """Hands the login the record as it was, then ``after`` for the re-read before the save."""

    def __init__(self, before: User, after: User | None) -> None:
        super().__init__()
        self.before = before
        self.after = after
        self.saved: list[User] = []

    async def get_user_by_username(self, tenant_id: str, username: str) -> User | None:
        return self.before

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        return self.after

    async def save_user(self, user: User) -> None:
        self.saved.append(user)


async def test_a_user_deleted_during_the_upgrade_is_refused() -> None:
    weak = await new_user(TENANT, "ada", PASSWORD, 1, hashing=INSECURE_TEST)
    storage = _ChangedMeanwhile(weak, None)
    assert await authenticate_user(storage, TENANT, "ada", PASSWORD, RFC9106) is None
    assert storage.saved == []


async def test_a_password_changed_during_the_upgrade_is_not_overwritten() -> None:
    weak = await new_user(TENANT, "ada", PASSWORD, 1, hashing=INSECURE_TEST)
    changed = replace(weak, password_hash=INSECURE_TEST.hash_sync("another password"))
    storage = _ChangedMeanwhile(weak, changed)
    assert await authenticate_user(storage, TENANT, "ada", PASSWORD, RFC9106) == changed
    assert storage.saved == []


async def test_the_upgrade_keeps_a_change_made_meanwhile() -> None:
    """An operator disabling the account or enrolling TOTP during the login is not undone."""
    weak = await new_user(TENANT, "ada", PASSWORD, 1, hashing=INSECURE_TEST)
    enrolled = replace(weak, totp_secret="sealed", display_name="Ada")
    storage = _ChangedMeanwhile(weak, enrolled)
    user = await authenticate_user(storage, TENANT, "ada", PASSWORD, RFC9106)
    assert user is not None
    assert storage.saved == [user]
    assert user == replace(enrolled, password_hash=user.password_hash)
    assert user.password_hash.startswith(STRONG_PREFIX)
