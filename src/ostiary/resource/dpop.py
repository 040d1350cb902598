"""DPoP-bound access tokens at a resource server (RFC 9449 §7, §9, §11.1).

:class:`DPoPOptions` turns on the ``DPoP`` authorization scheme in
:class:`~ostiary.resource.middleware.BearerAuthMiddleware` (and so in ``protect_mcp_app``,
the FastMCP adapter, the gateway and the demo). A request with ``Authorization: DPoP
<token>`` must carry exactly one ``DPoP`` proof header whose key is the token's ``cnf.jkt``,
whose ``ath`` is the token's hash, whose ``htm`` is the request method and whose ``htu`` is
the request URL built from the **configured** public resource URL (scheme, host and port of
``resource``; the path of the request), never from a Host or X-Forwarded header. The proof's
``iat`` must be inside the window and its ``jti`` is spent in a replay cache:

* give ``replay`` the ostiary storage (``open_storage(settings)``; Redis or SQL) and a proof
  replayed to any node sharing it is refused;
* otherwise an in-process :class:`BoundedReplayCache` is used: a replay to the same process
  is refused, one to another process within the ``iat`` window is not (the window bounds
  the exposure, as RFC 9449 §11.1 allows for stateless servers).

With ``nonces`` set, a proof must also carry a recent server nonce (§9): the first request
gets 401 ``use_dpop_nonce`` with a ``DPoP-Nonce`` header.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ostiary.core.dpop import (
    DPOP_ALGORITHMS,
    DPoPProof,
    ProofWindow,
    ReplayCache,
    normalize_htu,
    remember_proof,
    validate_proof,
)
from ostiary.core.dpop_nonce import NonceSource
from ostiary.errors import InvalidDpopProofError, InvalidTokenError
from ostiary.resource.principal import Principal
from ostiary.ttl_cache import TtlCache

__all__ = ["BoundedReplayCache", "DPoPOptions", "bound_jkt"]

DEFAULT_REPLAY_ENTRIES: Final = 100_000


class BoundedReplayCache:
    """An in-process ``remember_jti`` with a size bound (oldest entries go first).

    Enough for one process; several processes or nodes need the shared storage instead.
    """

    def __init__(self, max_entries: int = DEFAULT_REPLAY_ENTRIES) -> None:
        # Past the bound the oldest entry goes, expired or not: a flood of fresh proofs can
        # push a jti out early, which is why several nodes want the shared storage.
        self._seen: TtlCache[tuple[str, str], bool] = TtlCache(max_entries)

    @property
    def max_entries(self) -> int:
        """How many ``jti`` values are kept."""
        return self._seen.max_entries

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool:
        """True the first time ``key`` is seen before it expires (no await: atomic)."""
        return self._seen.add((tenant_id, key), True, deadline=expires_at, now=now)

    def __len__(self) -> int:
        return len(self._seen)


def bound_jkt(principal: Principal) -> str | None:
    """The token's RFC 9449 §6 ``cnf.jkt`` (JWT claim or introspection member), if any."""
    cnf = principal.claims.get("cnf")
    if isinstance(cnf, dict):
        jkt = cnf.get("jkt")
        if isinstance(jkt, str):
            return jkt
    return None


@dataclass
class DPoPOptions:
    """How a resource server accepts DPoP-bound tokens.

    Args:
        resource: The public URL of the protected resource (``https://mcp.example.com/mcp``);
            its scheme, host and port make every request's ``htu``.
        replay: Where proof ``jti`` values are spent; the ostiary storage to share them
            across nodes, else an in-process :class:`BoundedReplayCache`.
        tenant: The storage tenant the replay keys go under.
        window: How far a proof's ``iat`` may lie in the past and future.
        nonces: Require a server nonce in every proof (RFC 9449 §9); give every node the
            same secret.
        algorithms: Acceptable proof algorithms (also the challenge's ``algs``).
        advertise: Add a ``DPoP`` challenge (RFC 9449 §7.1) to every 401, next to
            ``Bearer``. Off, only a request that used the DPoP scheme gets one (with the
            error), so Bearer-only clients see exactly the challenge they saw before.
        clock: Seconds since the epoch (the authorization server's clock when combined).
    """

    resource: str
    replay: ReplayCache = field(default_factory=BoundedReplayCache)
    tenant: str = "default"
    window: ProofWindow = field(default_factory=ProofWindow)
    nonces: NonceSource | None = None
    algorithms: Sequence[str] = DPOP_ALGORITHMS
    advertise: bool = True
    clock: Callable[[], int] = field(default=lambda: int(time.time()), repr=False)
    _origin: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        normalized = normalize_htu(self.resource)
        if normalized is None:
            raise ValueError(f"DPoP resource {self.resource!r} is not an absolute http(s) URL")
        scheme, _, rest = normalized.partition("://")
        self._origin = f"{scheme}://{rest.split('/', 1)[0]}"

    def request_url(self, scope: dict[str, Any] | Any) -> str:
        """The ``htu`` this request must name: configured origin + the request path."""
        # Starlette keeps the full path in scope["path"] under a Mount (root_path is its
        # prefix), so the path is the one the client addressed.
        return f"{self._origin}{scope['path']}"

    async def check(
        self,
        principal: Principal,
        token: str,
        values: Sequence[str],
        *,
        method: str,
        url: str,
        now: int,
    ) -> DPoPProof:
        """Check the proof that came with ``Authorization: DPoP <token>`` (RFC 9449 §7.1).

        Raises:
            InvalidTokenError: The token is not DPoP-bound, or bound to another key.
            InvalidDpopProofError: The proof is missing, invalid or replayed (401).
            UseDpopNonceError: Nonces are on and the proof lacks a current one (401).
        """
        jkt = bound_jkt(principal)
        if jkt is None:
            raise InvalidTokenError(
                "The access token is not DPoP-bound: send it with the Bearer scheme.",
                detail="DPoP scheme with a token without cnf.jkt",
            )
        try:
            proof = validate_proof(
                values,
                method=method,
                url=url,
                now=now,
                window=self.window,
                access_token=token,
                algorithms=self.algorithms,
            )
        except InvalidDpopProofError as exc:
            raise InvalidDpopProofError(
                exc.description, detail=exc.detail, status_code=401
            ) from None
        if proof.jkt != jkt:
            raise InvalidTokenError(
                "The DPoP proof key is not the key the access token is bound to.",
                detail=f"proof jkt={proof.jkt} cnf.jkt={jkt}",
            )
        if self.nonces is not None:
            self.nonces.require(proof, now, status_code=401)
        try:
            await remember_proof(
                self.replay,
                self.tenant,
                proof,
                scope=f"rs:{self._origin}",
                now=now,
                window=self.window,
            )
        except InvalidDpopProofError as exc:
            raise InvalidDpopProofError(
                exc.description, detail=exc.detail, status_code=401
            ) from None
        return proof
