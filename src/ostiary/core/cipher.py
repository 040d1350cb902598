"""Secrets encrypted at rest with AES-256-GCM (NIST SP 800-38D; MCP BCP token storage).

One cipher serves every secret ostiary must read back, not just verify: upstream tokens
(``federation.token_key``), access-token signing keys and TOTP secrets (the storage
encryption key). Each value gets a fresh random 96-bit nonce (SP 800-38D §8.2.2; with random
nonces a key stays within the §8.3 limit of 2^32 invocations for far more writes than a server
makes). The associated data names the record and field the value belongs to, so a ciphertext
copied into another row, or into another field of the same row, fails to decrypt instead of
being accepted. Stored form: ``v1.<base64url(nonce || ciphertext || tag)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ostiary.errors import ToolkitError

#: Every sealed value starts with this; base32 (TOTP) and JSON never do.
SEALED_PREFIX = "v1."
KEY_BYTES = 32
_NONCE_BYTES = 12


class DecryptionError(ToolkitError):
    """A sealed value did not decrypt: another key sealed it, or it belongs to another record."""


def is_sealed(value: str) -> bool:
    """True when ``value`` has the stored form this module writes."""
    return value.startswith(SEALED_PREFIX)


class SecretCipher:
    """Seals and opens short secret strings with AES-256-GCM.

    Args:
        key: 32 bytes, e.g. ``base64.b64decode(settings.federation.token_key)``.
        source: Where the key came from, for error messages (never the key itself).

    Example:
        >>> cipher = SecretCipher(bytes(32))
        >>> cipher.decrypt(cipher.encrypt("t0k", "ctx"), "ctx")
        't0k'
    """

    def __init__(self, key: bytes, *, source: str = "the configured key") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256-GCM key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._derive = key
        self.source = source

    @classmethod
    def from_base64(cls, value: str, *, source: str = "the configured key") -> SecretCipher:
        """The cipher for a base64-encoded key (how the key settings hold it)."""
        try:
            key = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{source} is not valid base64") from exc
        return cls(key, source=source)

    def derive_key(self, label: str) -> bytes:
        """A 32-byte secret for another purpose (HMAC-SHA256 of ``label`` under the key).

        Every node holding the same key derives the same secret, and no derived secret
        reveals the key or another label's secret (DPoP nonces use one).
        """
        return hmac.new(self._derive, f"ostiary-derive|{label}".encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def decrypt(self, stored: str, associated: str) -> str:
        if not is_sealed(stored):
            raise DecryptionError("not a sealed value (unknown format)")
        body = stored[len(SEALED_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, associated.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError(f"the sealed value does not decrypt with {self.source}") from exc
