"""Local users with argon2id password hashes (RFC 9106; OWASP password storage).

The argon2 parameters come from the caller (:class:`~ostiary.core.passwords.PasswordHashing`,
full strength unless a test suite injects cheap ones). Login answers the same way, in about the
same time, whether the username exists or not: an unknown user still costs one argon2
verification against a fixed dummy hash made with the same parameters.

A TOTP secret cannot be hashed (checking a code needs the secret itself), so it is stored
sealed with the storage encryption key (:mod:`ostiary.core.cipher`), the associated data naming
tenant, user and field: a sealed secret copied onto another user does not open.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ostiary.core.cipher import DecryptionError, SecretCipher, is_sealed
from ostiary.core.models import User
from ostiary.core.passwords import RFC9106, PasswordHashing
from ostiary.core.secrets import new_secret
from ostiary.core.storage import RateLimiter, UserStore
from ostiary.errors import ConfigurationError

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


async def new_user(
    tenant_id: str,
    username: str,
    password: str,
    now: int,
    display_name: str | None = None,
    *,
    hashing: PasswordHashing = RFC9106,
) -> User:
    validate_username(username)
    validate_password(password)
    return User(
        tenant_id=tenant_id,
        user_id=new_secret(12),
        username=username,
        password_hash=await hashing.hash(password),
        created_at=now,
        display_name=display_name,
    )


async def authenticate_user(
    store: UserStore,
    tenant_id: str,
    username: str,
    password: str,
    hashing: PasswordHashing = RFC9106,
) -> User | None:
    """The user when the password matches and the account is enabled; else None.

    A matching password whose stored hash is weaker than ``hashing`` (made by an older
    release or with lower parameters) is hashed again and stored (OWASP: upgrade on login,
    the only time the plain password is at hand).
    """
    if len(password) > MAX_PASSWORD_LENGTH or len(username) > 256:
        return None
    user = await store.get_user_by_username(tenant_id, username)
    if user is None:
        await hashing.verify_nobody(password)
        return None
    if not await hashing.verify(user.password_hash, password) or user.disabled:
        return None
    if hashing.needs_rehash(user.password_hash):
        return await _rehashed(store, user, password, hashing)
    return user


async def _rehashed(
    store: UserStore, user: User, password: str, hashing: PasswordHashing
) -> User | None:
    upgraded = await hashing.hash(password)
    # Re-read so a change made meanwhile (disabled, second factor) is not overwritten with the
    # record read before; the upgrade is skipped when the password itself changed meanwhile.
    current = await store.get_user(user.tenant_id, user.user_id)
    if current is None:
        return None  # deleted meanwhile
    if current.password_hash != user.password_hash:
        return current
    current = replace(current, password_hash=upgraded)
    await store.save_user(current)
    return current


# -- TOTP secret at rest ---------------------------------------------------------------------


def _totp_associated(user: User) -> str:
    return f"ostiary-totp-secret|{user.tenant_id}|{user.user_id}|totp_secret"


def with_totp_secret(user: User, secret: str | None, cipher: SecretCipher) -> User:
    """``user`` enrolled with the base32 ``secret`` (stored sealed), or un-enrolled for None."""
    if secret is None:
        return replace(user, totp_secret=None)
    return replace(user, totp_secret=cipher.encrypt(secret, _totp_associated(user)))


def open_totp_secret(user: User, cipher: SecretCipher) -> str | None:
    """The user's base32 TOTP secret, or None when no second factor is enrolled.

    A legacy row holding the plain secret (base32 never contains '.') is returned as it is.

    Raises:
        ConfigurationError: The storage encryption key is not the one that sealed it.
    """
    stored = user.totp_secret
    if not stored or not is_sealed(stored):
        return stored or None
    try:
        return cipher.decrypt(stored, _totp_associated(user))
    except DecryptionError:
        raise ConfigurationError(
            f"the TOTP secret of user {user.user_id} does not decrypt with {cipher.source}: "
            "it was sealed with another storage encryption key. Set storage.encryption_key "
            "(OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore the storage.key file "
            "in data_dir it came from"
        ) from None


# -- sign-in throttling ----------------------------------------------------------------------

#: Window of both failed sign-in limits (security.login_failures_per_account).
LOGIN_WINDOW_SECONDS = 900
#: An address may fail this many times the per-account limit in one window, across accounts
#: (password spraying from one address; a shared NAT still gets room).
ADDRESS_LIMIT_FACTOR = 5
ACCOUNT_THROTTLED = "Too many failed sign-in attempts for this account. Try again in 15 minutes."
ADDRESS_THROTTLED = "Too many failed sign-in attempts from your network. Try again in 15 minutes."


class LoginThrottle:
    """Failed sign-ins per account and per address in a fixed 15-minute window (OWASP ASVS 2.2.1).

    The account key is the lower-cased username whether or not such a user exists, so the limit
    itself reveals nothing about which accounts exist. The storage offers only ``hit``
    (increment and read): every check hits a probe bucket and the failures bucket once, and a
    failure hits the failures bucket once more; both share the window, so failures = failures
    bucket - probes.
    """

    def __init__(self, store: RateLimiter, tenant_id: str, per_account: int) -> None:
        self._store = store
        self._tenant = tenant_id
        self._limits = {"account": per_account, "address": per_account * ADDRESS_LIMIT_FACTOR}

    @staticmethod
    def account_key(username: str) -> str:
        return username.lower()[:64]

    async def _failures(self, kind: str, key: str, now: int) -> int:
        probes = await self._store.hit(
            self._tenant, f"login_probes:{kind}:{key}", LOGIN_WINDOW_SECONDS, now
        )
        total = await self._store.hit(
            self._tenant, f"login_failures:{kind}:{key}", LOGIN_WINDOW_SECONDS, now
        )
        return total - probes

    async def check(self, username: str, address: str, now: int) -> str | None:
        """The message to show when either limit is reached, else None."""
        if (
            await self._failures("account", self.account_key(username), now)
            >= (self._limits["account"])
        ):
            return ACCOUNT_THROTTLED
        if await self._failures("address", address, now) >= self._limits["address"]:
            return ADDRESS_THROTTLED
        return None

    async def failed(self, username: str, address: str, now: int) -> None:
        for kind, key in (("account", self.account_key(username)), ("address", address)):
            await self._store.hit(
                self._tenant, f"login_failures:{kind}:{key}", LOGIN_WINDOW_SECONDS, now
            )
