"""The async authorization-server core's dependencies, bundled once per app (STYLE §A.1).

Endpoints and grant handlers receive one :class:`ServerContext`. It holds no HTTP objects: the
core stays free of Starlette, drivers and sockets, and talks to storage only through the
``Storage`` protocol and to the network only through the injected metadata resolver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ostiary._logging import Audit
from ostiary.core.cipher import SecretCipher
from ostiary.core.counters import ProcessCounters
from ostiary.core.keys import (
    KeyRing,
    generate_signing_key,
    is_sealed_jwk,
    retire,
    seal_signing_key,
)
from ostiary.core.models import Client, SigningKey
from ostiary.core.passwords import RFC9106, PasswordHashing, password_hashing
from ostiary.core.storage import RateLimiter, Storage
from ostiary.settings import Settings
from ostiary.ttl_cache import TtlCache

Clock = Callable[[], int]

#: How often a process re-reads the key set, so a rotation done elsewhere is picked up.
KEY_RELOAD_SECONDS = 60
#: Client records one process keeps (``security.client_cache_seconds``).
CLIENT_CACHE_ENTRIES = 10_000


def system_clock() -> int:
    return int(time.time())


class MetadataResolver(Protocol):
    """Fetches and validates Client ID Metadata Documents (implemented in ``ostiary.net``)."""

    async def resolve(
        self, client_id: str, *, tenant_id: str, now: int, supported_scopes: Sequence[str]
    ) -> Client: ...


class JwksSource(Protocol):
    """Loads a client's public keys for private_key_jwt (inline ``jwks`` or ``jwks_uri``)."""

    async def load(self, client: Client, *, now: int) -> Mapping[str, Any]: ...


class IssuerKeySource(Protocol):
    """Loads a trusted identity provider's JWK set (ID-JAG signatures), cached."""

    async def load(self, jwks_uri: str, *, now: int, refresh: bool = False) -> Mapping[str, Any]:
        """The set at ``jwks_uri``; ``refresh`` asks for a fresh copy (an unknown ``kid``),
        which the source may decline when it fetched the set very recently."""
        ...


@dataclass
class KeyManager:
    """Loads, creates and rotates the tenant's signing keys; caches the imported ring.

    Private keys are sealed with ``cipher`` (the storage encryption key) on every write; a
    ring that does not open with it raises ConfigurationError instead of making a new key,
    which would orphan every token the stored keys signed.
    """

    storage: Storage
    tenant_id: str
    alg: str
    token_ttl: int
    retire_grace: int
    cipher: SecretCipher
    _ring: KeyRing | None = None
    _loaded_at: int = -KEY_RELOAD_SECONDS

    async def ring(self, now: int) -> KeyRing:
        """The current ring, reloaded from storage at most every KEY_RELOAD_SECONDS."""
        if self._ring is None or now - self._loaded_at >= KEY_RELOAD_SECONDS:
            await self._load(now)
        assert self._ring is not None
        return self._ring

    async def ensure(self, now: int) -> KeyRing:
        """Create the first key when none exists (first start); seal legacy plain rows.

        Raises:
            ConfigurationError: The stored keys were sealed with another storage key.
        """
        await self._load(now)
        for record in self._ring.published if self._ring is not None else ():
            if not is_sealed_jwk(record.private_jwk):
                await self.storage.save_signing_key(seal_signing_key(record, self.cipher))
        if self._ring is None:
            await self.storage.save_signing_key(
                generate_signing_key(self.tenant_id, self.alg, now, cipher=self.cipher)
            )
            await self._load(now)
        assert self._ring is not None
        return self._ring

    async def rotate(self, now: int) -> SigningKey:
        """Make a new key active; old ones stay published until their tokens expire.

        Raises:
            ConfigurationError: The stored keys do not open with the storage key; checked
                before anything is written, so a wrong key never leaves a mixed key set.
        """
        await self._load(now)
        new = generate_signing_key(self.tenant_id, self.alg, now, cipher=self.cipher)
        publish_for = self.token_ttl + self.retire_grace
        for key in await self.storage.list_signing_keys(self.tenant_id):
            if key.retired_at is None:
                retired = retire(key, now=now, publish_for_seconds=publish_for)
                await self.storage.save_signing_key(seal_signing_key(retired, self.cipher))
        await self.storage.save_signing_key(new)
        await self._load(now)
        return new

    async def _load(self, now: int) -> None:
        records = await self.storage.list_signing_keys(self.tenant_id)
        self._ring = KeyRing.from_records(records, now, self.cipher)
        self._loaded_at = now


@dataclass
class ServerContext:
    settings: Settings
    storage: Storage
    keys: KeyManager
    audit: Audit
    #: Seals secrets the server must read back (TOTP secrets; the keys use ``keys.cipher``).
    cipher: SecretCipher
    clock: Clock = system_clock
    resolver: MetadataResolver | None = None
    jwks: JwksSource | None = None
    #: Trusted identity providers' key sets for the ID-JAG grant (``enterprise``).
    issuer_keys: IssuerKeySource | None = None
    extra: dict[str, object] = field(default_factory=dict)
    #: Per-address request counters (``security.rate_limit_scope``); None: the storage.
    request_counters: RateLimiter | None = None
    #: Client records this process read lately (``security.client_cache_seconds``).
    clients: TtlCache[str, Client] = field(default_factory=lambda: TtlCache(0))
    #: argon2 parameters for new password hashes (``security.password_hash``).
    passwords: PasswordHashing = RFC9106

    @property
    def tenant(self) -> str:
        return self.settings.storage.tenant

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    @classmethod
    def build(
        cls,
        settings: Settings,
        storage: Storage,
        *,
        cipher: SecretCipher,
        clock: Clock = system_clock,
        resolver: MetadataResolver | None = None,
        jwks: JwksSource | None = None,
        issuer_keys: IssuerKeySource | None = None,
    ) -> ServerContext:
        """The context for ``settings`` over ``storage``, sealing secrets with ``cipher``.

        The caller brings the cipher (``ostiary.storage_key.storage_cipher`` reads or creates
        the key file): the core does no file I/O.
        """
        keys = KeyManager(
            storage=storage,
            tenant_id=settings.storage.tenant,
            alg=settings.tokens.signing_alg,
            token_ttl=settings.tokens.access_token_ttl,
            retire_grace=settings.tokens.key_retire_grace,
            cipher=cipher,
        )
        security = settings.security
        in_process = security.rate_limit_scope == "process" and not settings.storage.redis_url
        return cls(
            settings=settings,
            storage=storage,
            keys=keys,
            audit=Audit(settings.storage.tenant),
            cipher=cipher,
            clock=clock,
            resolver=resolver,
            jwks=jwks,
            issuer_keys=issuer_keys,
            request_counters=ProcessCounters() if in_process else None,
            clients=TtlCache(CLIENT_CACHE_ENTRIES if security.client_cache_seconds else 0),
            passwords=password_hashing(security.password_hash),
        )
