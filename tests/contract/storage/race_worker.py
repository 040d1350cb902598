"""A separate OS process racing for one code or refresh token (cross-process atomicity).

Usage: ``python race_worker.py URL TENANT consume|rotate|rotate-grace|consume-and-hang HASH
NOW [REDIS_URL PREFIX]``. Opens its own SqlStorage (tiered with Redis under PREFIX when a
REDIS_URL is given), initialises it, prints ``ready``, waits for a line on stdin, then makes
one attempt and prints the resulting status value. ``rotate`` (no grace) and
``rotate-grace`` (a 30 s grace window) add the hash of the successor the process holds: its
own on OK, the winner's on SUPERSEDED. ``consume-and-hang`` then sleeps, to be killed with
SIGKILL by the test (durability of what was committed).
"""

from __future__ import annotations

import asyncio
import os
import sys

from ostiary.core.models import RefreshToken
from ostiary.storage import RedisEphemeralStore, SqlStorage, Storage, TieredStorage


def open_backend(url: str, redis_url: str = "", prefix: str = "") -> Storage:
    """SqlStorage, or TieredStorage over it when a Redis URL is given."""
    if not redis_url:
        return SqlStorage(url)
    return TieredStorage(SqlStorage(url), RedisEphemeralStore(redis_url, prefix=prefix))


async def attempt(
    url: str, tenant: str, op: str, secret_hash: str, now: int, redis: tuple[str, ...] = ()
) -> str:
    storage = open_backend(url, *redis)
    try:
        await storage.initialize()
        assert await storage.healthy()  # the pool holds a live connection before the race
        print("ready", flush=True)
        sys.stdin.readline()
        if op.startswith("consume"):
            result = await storage.consume_authorization_code(tenant, secret_hash, now)
            if op == "consume-and-hang":
                print(result.status.value, flush=True)
                await asyncio.sleep(3600)
            return result.status.value
        new = RefreshToken(
            tenant_id=tenant,
            token_hash=f"new-{os.getpid()}",
            grant_id="grant-1",
            client_id="client-1",
            subject="user-1",
            scopes=("mcp:read",),
            resource=None,
            issued_at=now,
            expires_at=now + 3600,
            idle_expires_at=now + 3600,
        )
        grace = 30 if op == "rotate-grace" else 0
        rotated = await storage.rotate_refresh_token(
            tenant, secret_hash, new, now, grace, sealed_successor=f"v1.{new.token_hash}"
        )
        held = rotated.successor.token_hash if rotated.successor else new.token_hash
        return f"{rotated.status.value} {held}"
    finally:
        await storage.close()


if __name__ == "__main__":
    url, tenant, op, secret_hash, now = sys.argv[1:6]
    print(asyncio.run(attempt(url, tenant, op, secret_hash, int(now), tuple(sys.argv[6:8]))))
