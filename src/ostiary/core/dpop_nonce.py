"""Server-provided DPoP nonces, stateless and shared by every node (RFC 9449 §8, §9).

A nonce is an HMAC of the current time window under a server secret, so every node that
shares the secret (the authorization server derives it from the storage encryption key)
computes the same value without storing anything. Nonces rotate every ``lifetime``
seconds; the previous window's nonce is still accepted, so a client that just received one
is never refused because the window turned (RFC 9449 §8.2: a server may accept several).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from ostiary.core.dpop import DPoPProof
from ostiary.errors import UseDpopNonceError

__all__ = ["NonceSource"]


@dataclass(frozen=True, slots=True)
class NonceSource:
    """Issues and checks DPoP nonces.

    Args:
        secret: Shared by every node that must accept each other's nonces.
        lifetime: Seconds one nonce is current (accepted for up to twice that).

    Example:
        >>> nonces = NonceSource(b"k" * 32, lifetime=300)
        >>> nonces.accepts(nonces.current(1_000), 1_200)
        True
    """

    secret: bytes
    lifetime: int = 300

    def _for_window(self, window: int) -> str:
        digest = hmac.new(self.secret, f"dpop-nonce|{window}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).rstrip(b"=").decode("ascii")

    def current(self, now: int) -> str:
        """The nonce to hand out now (``DPoP-Nonce``)."""
        return self._for_window(now // self.lifetime)

    def accepts(self, nonce: str | None, now: int) -> bool:
        """True for the current nonce or the one just before it."""
        if nonce is None:
            return False
        window = now // self.lifetime
        return any(
            hmac.compare_digest(nonce.encode(), self._for_window(w).encode())
            for w in (window, window - 1)
        )

    def require(self, proof: DPoPProof, now: int, *, status_code: int = 400) -> None:
        """Refuse a proof without an acceptable nonce with ``use_dpop_nonce``.

        Raises:
            UseDpopNonceError: Carrying the current nonce for the ``DPoP-Nonce`` header
                (400 at the token endpoint, 401 at a resource server).
        """
        if not self.accepts(proof.nonce, now):
            raise UseDpopNonceError(
                "Resend the request with a DPoP proof carrying the server nonce.",
                nonce=self.current(now),
                status_code=status_code,
                detail="stale nonce" if proof.nonce else "no nonce",
            )
