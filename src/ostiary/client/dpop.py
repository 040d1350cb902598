"""DPoP proofs for the client (RFC 9449 §4.2 proof syntax, §7.1 ``ath``, §8-9 nonces).

A :class:`DPoPSigner` holds one ephemeral key pair for the life of a client (the access
token is bound to its thumbprint) and makes a fresh proof for every request: ``typ``
``dpop+jwt``, the public ``jwk`` in the header, a unique ``jti``, ``htm``, ``htu``
(without query or fragment), ``iat``, the server's ``nonce`` when it demanded one, and,
for resource requests, ``ath`` = base64url(SHA-256(access token)).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import ECKey

__all__ = ["DPOP_ALGORITHM", "DPoPSigner", "access_token_hash"]

DPOP_ALGORITHM = "ES256"


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url of the SHA-256 of the ASCII access token."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _htu(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class DPoPSigner:
    """An ES256 key pair and the proofs it signs."""

    def __init__(self, key: ECKey | None = None) -> None:
        self.key = key or ECKey.generate_key("P-256")
        self.public_jwk: dict[str, Any] = dict(self.key.as_dict(private=False))

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> DPoPSigner:
        """A signer for a key saved with :meth:`private_jwk`."""
        return cls(ECKey.import_key(jwk))

    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of the public key: ``dpop_jkt`` and the token's ``cnf.jkt``."""
        return self.key.thumbprint()

    def private_jwk(self) -> dict[str, Any]:
        """The private key as a JWK, to store next to the tokens bound to it."""
        return dict(self.key.as_dict(private=True))

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
    ) -> str:
        """A fresh proof for one HTTP request.

        Args:
            method: The request method (``htm``).
            url: The request URL; query and fragment are dropped (``htu``, §4.2).
            access_token: Bind the proof to this token (``ath``), for resource requests.
            nonce: The server-provided ``DPoP-Nonce``, when one was demanded.
            now: The clock, for tests.
        """
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method.upper(),
            "htu": _htu(url),
            "iat": int(now if now is not None else time.time()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": DPOP_ALGORITHM, "jwk": self.public_jwk}
        return jwt.encode(header, claims, self.key, algorithms=[DPOP_ALGORITHM])
