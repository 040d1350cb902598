"""Local users with argon2id password hashes (RFC 9106; OWASP password storage).

Login answers the same way, in about the same time, whether the username exists or not: an
unknown user still costs one argon2 verification against a fixed dummy hash. Hashing runs in a
worker thread because argon2 is deliberately CPU-heavy and would otherwise stall the event loop.
"""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ostiary.core.models import User
from ostiary.core.secrets import new_secret
from ostiary.storage.base import UserStore

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("ostiary-dummy-password-for-timing")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def validate_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValueError("username: 1-64 characters from letters, digits and . _ @ + -")


def validate_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def new_user(
    tenant_id: str, username: str, password: str, now: int, display_name: str | None = None
) -> User:
    validate_username(username)
    validate_password(password)
    return User(
        tenant_id=tenant_id,
        user_id=new_secret(12),
        username=username,
        password_hash=await hash_password(password),
        created_at=now,
        display_name=display_name,
    )


async def authenticate_user(
    store: UserStore, tenant_id: str, username: str, password: str
) -> User | None:
    """The user when the password matches and the account is enabled; else None."""
    if len(password) > MAX_PASSWORD_LENGTH or len(username) > 256:
        return None
    user = await store.get_user_by_username(tenant_id, username)
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(_verify, stored, password)
    if user is None or not ok or user.disabled:
        return None
    return user
