"""Redis store for the ephemeral, high-churn records (OAuth 2.1 §4.1.3; RFC 9700 §4.2.4).

Authorization codes, the jti replay cache, rate-limit counters, pending interactions and
browser sessions: short-lived records written on every login and token request, which a
shared Redis serves to several ``ostiary serve`` processes with native expiry. Everything
durable (clients, grants, tokens, users, keys, ...) stays in SQL; :class:`TieredStorage`
(``storage/tiered.py``) puts the two together behind the one ``Storage`` protocol.

Every decision uses the caller's ``now`` and the ``expires_at`` stored with the record, as
the other backends do; the Redis TTL only collects garbage. It is set from the wall clock
to the record's expiry (codes: expiry plus :data:`CODE_RETENTION_SECONDS`, so a replay just
after expiry is still recognised and its grant revoked), and never below one second.

Atomicity comes from Lua scripts, which Redis runs one at a time:

* consuming a code reads it and stamps ``consumed_at`` in one script: of N concurrent
  callers, in any number of processes, exactly one finds it unconsumed;
* the codes of a grant, a client and a subject are indexed in sets; revoking the grant (or
  deleting the client or user) marks every indexed code consumed in one script, so a later
  presentation is ``REPLAYED`` and revokes again;
* ``remember_jti`` and rate-limit ``hit`` are each one script.

Keys (see ``docs/storage-schema.md``) are ``<prefix>{<tenant>}:<kind>:<id>`` with the tenant
percent-encoded inside a Redis Cluster hash tag, so one tenant's keys share a slot and the
scripts may touch the code keys they find in an index set.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from ostiary.core.models import (
    AuthorizationCode,
    BrowserSession,
    ConsumeResult,
    ConsumeStatus,
    Interaction,
)
from ostiary.errors import StorageError
from ostiary.storage.rules import consume_status

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: How long a code is kept past its expiry, to recognise a late replay (seconds).
CODE_RETENTION_SECONDS = 600
#: How long a call waits for a free pooled connection before failing (seconds).
POOL_TIMEOUT_SECONDS = 5
#: The shortest TTL given to a key, so a record saved already expired is still classified.
MIN_TTL_MS = 1000

CodeIndex = Literal["grant_id", "client_id", "subject"]

_SAVE_CODE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'expires_at', ARGV[2],
           'grant_id', ARGV[7], 'client_id', ARGV[8], 'subject', ARGV[9])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'consumed_at', ARGV[3])
  redis.call('ZREM', KEYS[5], ARGV[5])
else
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[5])
end
local ttl = tonumber(ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, 4 do
  redis.call('SADD', KEYS[i], ARGV[5])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[6])
if redis.call('PTTL', KEYS[5]) < ttl then redis.call('PEXPIRE', KEYS[5], ttl) end
"""

# Single use: the read and the stamp happen in one script. Returns nil when unknown, else
# {record, consumed_at or '', 1 if this call consumed it}.
_CONSUME_CODE = """
local v = redis.call('HMGET', KEYS[1], 'record', 'consumed_at', 'expires_at')
if not v[1] then return nil end
if (not v[2]) and tonumber(v[3]) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'consumed_at', ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {v[1], ARGV[1], 1}
end
return {v[1], v[2] or '', 0}
"""

# The cascade: every indexed code still owned by the grant/client/subject is consumed.
_RETIRE_CODES = """
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[4] .. h
  local v = redis.call('HMGET', key, ARGV[2], 'consumed_at')
  if v[1] == ARGV[3] and not v[2] then
    redis.call('HSET', key, 'consumed_at', ARGV[1])
    redis.call('ZREM', KEYS[2], h)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
return n
"""

_REMEMBER_JTI = """
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(seen) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""

_HIT = """
local count
if redis.call('HGET', KEYS[1], 'w') == ARGV[1] then
  count = redis.call('HINCRBY', KEYS[1], 'c', 1)
else
  redis.call('HSET', KEYS[1], 'w', ARGV[1], 'c', 1)
  count = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return count
"""


def _json(record: DataclassInstance) -> str:
    try:
        return json.dumps(asdict(record), separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StorageError(f"storage backend failed: {type(exc).__name__}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _code(raw: Any, consumed_at: Any) -> AuthorizationCode:
    data = json.loads(_text(raw))
    stamp = _text(consumed_at)
    data.update(scopes=tuple(data["scopes"]), consumed_at=int(stamp) if stamp else None)
    return AuthorizationCode(**data)


class RedisEphemeralStore:
    """Authorization codes, replay cache, rate limits, interactions and sessions in Redis.

    Not a whole :class:`~ostiary.core.storage.Storage`: wrap it with a durable store in
    :class:`~ostiary.storage.tiered.TieredStorage` (``open_storage`` does when
    ``storage.redis_url`` is set).

    Args:
        url: ``redis://[:password@]host:port/db`` or ``rediss://…`` (TLS).
        prefix: Put before every key, so several deployments can share one Redis.
        max_connections: Size of the connection pool.
        wall_clock: Seconds since the epoch, for the TTLs only (tests may pin it).

    Example:
        >>> store = RedisEphemeralStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ostiary:",
        max_connections: int = 50,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix
        self._clock = wall_clock
        # A blocking pool: a burst larger than the pool waits for a connection (up to
        # POOL_TIMEOUT_SECONDS) instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_TIMEOUT_SECONDS,
            socket_timeout=5,
            socket_connect_timeout=5,
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._save_code = self._redis.register_script(_SAVE_CODE)
        self._consume = self._redis.register_script(_CONSUME_CODE)
        self._retire = self._redis.register_script(_RETIRE_CODES)
        self._remember = self._redis.register_script(_REMEMBER_JTI)
        self._hit = self._redis.register_script(_HIT)

    # -- plumbing ----------------------------------------------------------------------------

    def key(self, tenant_id: str, kind: str, ident: str | None = None) -> str:
        """``<prefix>{<tenant>}:<kind>[:<id>]``; the tenant is percent-encoded, so no id can
        make two tenants' keys meet."""
        base = f"{self.prefix}{{{quote(tenant_id, safe='')}}}:{kind}"
        return base if ident is None else f"{base}:{ident}"

    def _ttl_ms(self, expires_at: int, extra_seconds: int = 0) -> int:
        return max(int((expires_at + extra_seconds - self._clock()) * 1000), MIN_TTL_MS)

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StorageError(f"storage backend failed: {type(exc).__name__}") from exc

    # -- lifecycle ---------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Check the server answers; there is no schema."""
        async with self._errors():
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    async def healthy(self) -> bool:
        try:
            async with self._errors():
                return bool(await self._redis.ping())
        except StorageError:
            return False

    async def purge_expired(self, now: int) -> int:
        """Nothing to do: Redis expires every key by its TTL. Always 0."""
        return 0

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        t = code.tenant_id
        keys = [
            self.key(t, "code", code.code_hash),
            self.key(t, "codes:grant_id", code.grant_id),
            self.key(t, "codes:client_id", code.client_id),
            self.key(t, "codes:subject", code.subject),
            self.key(t, "codes:live"),
        ]
        consumed = "" if code.consumed_at is None else str(code.consumed_at)
        args: list[str | int] = [
            _json(code),
            code.expires_at,
            consumed,
            self._ttl_ms(code.expires_at, CODE_RETENTION_SECONDS),
            code.code_hash,
            int(self._clock()),
            code.grant_id,
            code.client_id,
            code.subject,
        ]
        async with self._errors():
            await self._save_code(keys=keys, args=args)

    async def consume_authorization_code(
        self, tenant_id: str, code_hash: str, now: int
    ) -> ConsumeResult:
        keys = [self.key(tenant_id, "code", code_hash), self.key(tenant_id, "codes:live")]
        async with self._errors():
            found = await self._consume(keys=keys, args=[now, code_hash])
        if found is None:
            return ConsumeResult(ConsumeStatus.NOT_FOUND)
        raw, consumed_at, won = found
        code = _code(raw, consumed_at)
        if int(won) == 1:
            return ConsumeResult(ConsumeStatus.OK, code)
        return ConsumeResult(consume_status(code, now), code)

    async def retire_codes(self, tenant_id: str, by: CodeIndex, value: str, now: int) -> int:
        """Mark consumed, at ``now``, every unconsumed code whose ``by`` field is ``value``.

        The cascade of ``revoke_grant`` (``by="grant_id"``), ``delete_client`` and
        ``delete_user``. Returns how many codes it retired.
        """
        keys = [self.key(tenant_id, f"codes:{by}", value), self.key(tenant_id, "codes:live")]
        args: list[str | int] = [now, by, value, self.key(tenant_id, "code", "")]
        async with self._errors():
            return int(await self._retire(keys=keys, args=args))

    async def live_codes(self, tenant_id: str, now: int) -> int:
        """Unconsumed codes of the tenant that have not expired at ``now``."""
        async with self._errors():
            return int(
                await self._redis.zcount(self.key(tenant_id, "codes:live"), f"({now}", "+inf")
            )

    # -- interactions and browser sessions ---------------------------------------------------

    async def _put(self, key: str, record: DataclassInstance, expires_at: int) -> None:
        value = _json(record)
        async with self._errors():
            await self._redis.set(key, value, px=self._ttl_ms(expires_at))

    async def _fetch(self, key: str) -> dict[str, Any] | None:
        async with self._errors():
            raw = await self._redis.get(key)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def _delete(self, key: str) -> bool:
        async with self._errors():
            return int(await self._redis.delete(key)) == 1

    async def save_interaction(self, interaction: Interaction) -> None:
        key = self.key(interaction.tenant_id, "interaction", interaction.interaction_id)
        await self._put(key, interaction, interaction.expires_at)

    async def get_interaction(
        self, tenant_id: str, interaction_id: str, now: int
    ) -> Interaction | None:
        data = await self._fetch(self.key(tenant_id, "interaction", interaction_id))
        return Interaction(**data) if data is not None and data["expires_at"] > now else None

    async def delete_interaction(self, tenant_id: str, interaction_id: str) -> bool:
        """DEL answers 1 to exactly one concurrent caller: single use."""
        return await self._delete(self.key(tenant_id, "interaction", interaction_id))

    async def save_session(self, session: BrowserSession) -> None:
        key = self.key(session.tenant_id, "session", session.session_hash)
        await self._put(key, session, session.expires_at)

    async def get_session(
        self, tenant_id: str, session_hash: str, now: int
    ) -> BrowserSession | None:
        data = await self._fetch(self.key(tenant_id, "session", session_hash))
        return BrowserSession(**data) if data is not None and data["expires_at"] > now else None

    async def delete_session(self, tenant_id: str, session_hash: str) -> None:
        await self._delete(self.key(tenant_id, "session", session_hash))

    # -- replay cache and rate limits --------------------------------------------------------

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        args = [expires_at, now, self._ttl_ms(expires_at)]
        async with self._errors():
            return int(await self._remember(keys=[self.key(tenant_id, "jti", key)], args=args)) == 1

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        start = now - now % window_seconds
        args = [start, self._ttl_ms(start + window_seconds)]
        async with self._errors():
            return int(await self._hit(keys=[self.key(tenant_id, "rate", bucket)], args=args))
