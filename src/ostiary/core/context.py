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
from ostiary.core.keys import KeyRing, generate_signing_key, retire
from ostiary.core.models import Client, SigningKey
from ostiary.settings import Settings
from ostiary.storage.base import Storage

Clock = Callable[[], int]

#: How often a process re-reads the key set, so a rotation done elsewhere is picked up.
KEY_RELOAD_SECONDS = 60


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


@dataclass
class KeyManager:
    """Loads, creates and rotates the tenant's signing keys; caches the imported ring."""

    storage: Storage
    tenant_id: str
    alg: str
    token_ttl: int
    retire_grace: int
    _ring: KeyRing | None = None
    _loaded_at: int = -KEY_RELOAD_SECONDS

    async def ring(self, now: int) -> KeyRing:
        """The current ring, reloaded from storage at most every KEY_RELOAD_SECONDS."""
        if self._ring is None or now - self._loaded_at >= KEY_RELOAD_SECONDS:
            await self._load(now)
        assert self._ring is not None
        return self._ring

    async def ensure(self, now: int) -> KeyRing:
        """Create the first key when none exists (first start)."""
        await self._load(now)
        if self._ring is None:
            await self.storage.save_signing_key(generate_signing_key(self.tenant_id, self.alg, now))
            await self._load(now)
        assert self._ring is not None
        return self._ring

    async def rotate(self, now: int) -> SigningKey:
        """Make a new key active; old ones stay published until their tokens expire."""
        new = generate_signing_key(self.tenant_id, self.alg, now)
        for key in await self.storage.list_signing_keys(self.tenant_id):
            if key.retired_at is None:
                await self.storage.save_signing_key(
                    retire(key, now=now, publish_for_seconds=self.token_ttl + self.retire_grace)
                )
        await self.storage.save_signing_key(new)
        await self._load(now)
        return new

    async def _load(self, now: int) -> None:
        records = await self.storage.list_signing_keys(self.tenant_id)
        self._ring = KeyRing.from_records(records, now)
        self._loaded_at = now


@dataclass
class ServerContext:
    settings: Settings
    storage: Storage
    keys: KeyManager
    audit: Audit
    clock: Clock = system_clock
    resolver: MetadataResolver | None = None
    jwks: JwksSource | None = None
    extra: dict[str, object] = field(default_factory=dict)

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
        clock: Clock = system_clock,
        resolver: MetadataResolver | None = None,
        jwks: JwksSource | None = None,
    ) -> ServerContext:
        keys = KeyManager(
            storage=storage,
            tenant_id=settings.storage.tenant,
            alg=settings.tokens.signing_alg,
            token_ttl=settings.tokens.access_token_ttl,
            retire_grace=settings.tokens.key_retire_grace,
        )
        return cls(
            settings=settings,
            storage=storage,
            keys=keys,
            audit=Audit(settings.storage.tenant),
            clock=clock,
            resolver=resolver,
            jwks=jwks,
        )
