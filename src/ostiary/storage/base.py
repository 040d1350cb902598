"""The storage protocol's former home, kept so ``ostiary.storage.base`` imports still work.

The protocol is a port of the core (``ostiary.core.storage``): the core declares what it
needs persisted and the backends in this package implement it, so dependencies point
inward. New code imports from ``ostiary.core.storage``.
"""

from __future__ import annotations

from ostiary.core.storage import (
    AccessTokenStore,
    ClientStore,
    CodeStore,
    ConsentStore,
    GrantStore,
    IdentityStore,
    InteractionStore,
    KeyStore,
    NoteStore,
    RateLimiter,
    RefreshTokenStore,
    ReplayCache,
    Storage,
    UserStore,
)

__all__ = [
    "AccessTokenStore",
    "ClientStore",
    "CodeStore",
    "ConsentStore",
    "GrantStore",
    "IdentityStore",
    "InteractionStore",
    "KeyStore",
    "NoteStore",
    "RateLimiter",
    "RefreshTokenStore",
    "ReplayCache",
    "Storage",
    "UserStore",
]
