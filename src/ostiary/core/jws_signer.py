"""Compact JWS signing with one fixed key and header (RFC 7515 §3.1, §5.1; RFC 7518 §3.3-§3.4).

Every access token the server issues is signed with the key ring's active key under the
same protected header (``alg``, ``kid``, ``typ``). A :class:`CompactSigner` encodes that
header once and signs each payload with the ``cryptography`` key directly: a general JOSE
library re-validates and re-encodes the header and the key on every call, which cost about
as much as the ECDSA signature itself. What comes out is an ordinary compact JWS; verifying
still goes through joserfc (``core/tokens.py``, the resource servers).

The signature encodings are the JWA ones: ES256 is ``R || S``, each 32 bytes big-endian
(RFC 7518 §3.4), not DER; EdDSA is the 64-byte Ed25519 signature (RFC 8037 §3.1); RS256 is
RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_ES256_COORDINATE = 32
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def b64url(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _signature_function(alg: str, private_key: object) -> Callable[[bytes], bytes]:
    """The JWA signature of ``alg`` with ``private_key`` (a ``cryptography`` key object)."""
    if alg == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey):
        if private_key.curve.name != "secp256r1":
            raise ValueError(f"ES256 needs a P-256 key, not {private_key.curve.name}")

        def es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(private_key.sign(data, _ECDSA_SHA256))
            return r.to_bytes(_ES256_COORDINATE, "big") + s.to_bytes(_ES256_COORDINATE, "big")

        return es256
    if alg in ("EdDSA", "Ed25519") and isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign
    if alg == "RS256" and isinstance(private_key, rsa.RSAPrivateKey):

        def rs256(data: bytes) -> bytes:
            return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

        return rs256
    raise ValueError(f"no signer for alg {alg!r} with a {type(private_key).__name__}")


class CompactSigner:
    """Signs payloads under one protected header with one private key.

    Args:
        header: The JOSE protected header, ``alg`` included.
        private_key: The ``cryptography`` private key ``alg`` needs (P-256 for ES256,
            Ed25519 for EdDSA/Ed25519, RSA for RS256).

    Raises:
        ValueError: ``alg`` and the key do not go together, or ``alg`` is not supported.

    Example:
        >>> from joserfc import jwt
        >>> from joserfc.jwk import ECKey
        >>> key = ECKey.generate_key("P-256")
        >>> signer = CompactSigner({"alg": "ES256", "kid": "k1"}, key.private_key)
        >>> token = signer.sign({"sub": "alice"})
        >>> jwt.decode(token, key, algorithms=["ES256"]).claims
        {'sub': 'alice'}
    """

    __slots__ = ("_prefix", "_sign")

    def __init__(self, header: Mapping[str, Any], private_key: object) -> None:
        self._sign = _signature_function(str(header["alg"]), private_key)
        self._prefix = b64url(_json(header)) + b"."

    def sign(self, payload: Mapping[str, Any]) -> str:
        """The compact JWS of ``payload`` (serialised as JSON)."""
        signing_input = self._prefix + b64url(_json(payload))
        return (signing_input + b"." + b64url(self._sign(signing_input))).decode("ascii")
