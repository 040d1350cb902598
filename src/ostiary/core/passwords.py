"""Password hashing with argon2id (RFC 9106 §4; OWASP Password Storage Cheat Sheet).

A :class:`PasswordHashing` holds the argon2 parameters new hashes are made with and is injected
where passwords are hashed or checked (``ServerContext.passwords``, the CLI), so production runs
at full strength while a test suite may run at the cheapest parameters. Verifying needs no
parameters: an argon2 hash string carries its own, so hashes made with other parameters (an
older release, a test profile) still verify, and :meth:`PasswordHashing.needs_rehash` tells the
login path when a hash is weaker than the configured parameters and should be replaced.

Hashing runs in a worker thread because argon2 is deliberately CPU-heavy and would otherwise
stall the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION

from ostiary.settings import PasswordHashProfile

_DUMMY_PASSWORD = "ostiary-dummy-password-for-timing"


@dataclass(frozen=True)
class PasswordHashing:
    """argon2id with the given parameters; the defaults are full strength.

    The defaults are RFC 9106 §4's second recommended option (argon2id, t=3 passes,
    m=64 MiB, p=4 lanes, 128-bit salt, 256-bit tag), which is also above OWASP's minimum
    (m=19 MiB, t=2, p=1).

    Example:
        >>> hashing = PasswordHashing(time_cost=1, memory_cost=8, parallelism=1)
        >>> hashed = hashing.hash_sync("correct horse")
        >>> hashing.verify_sync(hashed, "correct horse")
        True
        >>> PasswordHashing().needs_rehash(hashed)
        True
    """

    time_cost: int = 3
    #: KiB.
    memory_cost: int = 64 * 1024
    parallelism: int = 4
    hash_len: int = 32
    salt_len: int = 16

    @cached_property
    def _hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=self.hash_len,
            salt_len=self.salt_len,
            type=Type.ID,
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Made on first use with these parameters, so an unknown username costs as much as a
        # known one (and importing the module costs no hash).
        return self.hash_sync(_DUMMY_PASSWORD)

    def hash_sync(self, password: str) -> str:
        """The argon2id hash string of ``password`` (blocks; prefer :meth:`hash`)."""
        return self._hasher.hash(password)

    def verify_sync(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``, whatever parameters made it.

        A value that is no argon2 hash (a user without a password) never matches.
        """
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_sync, password_hash, password)

    async def verify_nobody(self, password: str) -> None:
        """Spend one verification on a fixed hash: the answer for an unknown username."""
        await asyncio.to_thread(self.verify_sync, self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` is weaker than what these parameters make.

        Weaker means another argon2 variant or version, fewer passes, less memory, or a
        shorter salt or tag. Unlike argon2-cffi's ``check_needs_rehash`` (any difference), a
        hash *stronger* than the configuration is kept: a test profile never downgrades one,
        and neither does a lane count (parallelism) that adds no cost to an attacker.
        """
        try:
            params = extract_parameters(password_hash)
        except InvalidHashError:
            return False  # no argon2 hash at all (a user without a password): nothing to redo
        return (
            params.type is not Type.ID
            or params.version < ARGON2_VERSION
            or params.time_cost < self.time_cost
            or params.memory_cost < self.memory_cost
            or params.hash_len < self.hash_len
            or params.salt_len < self.salt_len
        )


#: Full strength: what production hashes with (RFC 9106 §4, second recommended option).
RFC9106: Final = PasswordHashing()
#: argon2's minimum cost, for test suites only: ``Settings`` refuses it unless dev mode is on.
INSECURE_TEST: Final = PasswordHashing(time_cost=1, memory_cost=8, parallelism=1)

_PROFILES: Final[dict[PasswordHashProfile, PasswordHashing]] = {
    "rfc9106": RFC9106,
    "insecure-test": INSECURE_TEST,
}


def password_hashing(profile: PasswordHashProfile) -> PasswordHashing:
    """The parameters a ``security.password_hash`` profile names."""
    return _PROFILES[profile]
