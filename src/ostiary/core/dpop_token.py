"""DPoP at the token endpoint: proof, nonce, replay and who must use it (RFC 9449 §5, §8).

:func:`check_token_proof` runs once per token request, after client authentication and
before the grant, so a bad proof never spends a code or rotates a refresh token. It answers
the proof's key thumbprint (``jkt``) the grant binds its tokens to, or None for a request
without a proof when none is required. A proof is required when ``tokens.dpop_required`` is
set or the client registered ``dpop_bound_access_tokens: true`` (RFC 9449 §5.2).

``htu`` is compared with the token endpoint URL built from the configured issuer, never from
the request's Host or X-Forwarded headers. A ``jti`` is spent in the storage replay cache,
so a proof replayed to another node behind the same storage is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence

from ostiary.core.clients import is_confidential
from ostiary.core.context import ServerContext
from ostiary.core.dpop import ProofWindow, remember_proof, validate_proof
from ostiary.core.dpop_nonce import NonceSource
from ostiary.core.models import Client
from ostiary.errors import InvalidDpopProofError

__all__ = [
    "DPOP_BOUND_METADATA",
    "binds_refresh_token",
    "check_token_proof",
    "nonce_source",
    "proof_window",
    "require_key",
]

#: RFC 9449 §5.2 client registration metadata.
DPOP_BOUND_METADATA = "dpop_bound_access_tokens"
_NONCE_SECRET_LABEL = "ostiary-dpop-nonce"


def proof_window(ctx: ServerContext) -> ProofWindow:
    tokens = ctx.settings.tokens
    return ProofWindow(max_age=tokens.dpop_proof_max_age, max_future=tokens.dpop_proof_max_future)


def nonce_source(ctx: ServerContext) -> NonceSource | None:
    """The AS nonce source when ``tokens.dpop_nonce`` is on; its secret comes from the
    storage key, so every node sharing the storage key agrees on the current nonce."""
    tokens = ctx.settings.tokens
    if not tokens.dpop_nonce:
        return None
    secret = ctx.cipher.derive_key(_NONCE_SECRET_LABEL)
    return NonceSource(secret, lifetime=tokens.dpop_nonce_lifetime)


def requires_proof(ctx: ServerContext, client: Client) -> bool:
    return ctx.settings.tokens.dpop_required or client.extra.get(DPOP_BOUND_METADATA) is True


async def check_token_proof(
    ctx: ServerContext, client: Client, values: Sequence[str]
) -> str | None:
    """Validate the token request's ``DPoP`` header; the proof key's thumbprint, or None.

    Raises:
        InvalidDpopProofError: A proof is required and missing, or the proof is invalid
            or replayed.
        UseDpopNonceError: Nonces are on and the proof lacks the current one (400, with
            the nonce in ``DPoP-Nonce``).
    """
    nonces = nonce_source(ctx)
    if not values:
        if requires_proof(ctx, client):
            raise InvalidDpopProofError("A DPoP proof is required for this client.")
        return None
    now = ctx.clock()
    window = proof_window(ctx)
    proof = validate_proof(values, method="POST", url=f"{ctx.issuer}/token", now=now, window=window)
    if nonces is not None:
        nonces.require(proof, now)
    await remember_proof(ctx.storage, ctx.tenant, proof, scope="token", now=now, window=window)
    return proof.jkt


def binds_refresh_token(client: Client, jkt: str | None) -> str | None:
    """RFC 9449 §5.0: a public client's refresh token is bound to its DPoP key.

    A confidential client's refresh token is bound to its authentication instead, and it
    may present another key at each refresh.
    """
    return None if is_confidential(client) else jkt


def require_key(bound: str | None, jkt: str | None, what: str) -> None:
    """Refuse a request whose proof key is not the one ``what`` is bound to (§5.0, §10).

    Raises:
        InvalidDpopProofError: No proof, or a proof of another key.
    """
    if bound is None:
        return
    if jkt is None:
        raise InvalidDpopProofError(f"This {what} is bound to a DPoP key: send a DPoP proof.")
    if jkt != bound:
        raise InvalidDpopProofError(
            f"The DPoP proof key is not the key this {what} is bound to.",
            detail=f"proof jkt={jkt} bound={bound}",
        )
