"""Upstream tokens encrypted at rest with AES-256-GCM (NIST SP 800-38D; MCP BCP token storage).

Each value gets a fresh 96-bit nonce. The associated data names the record the value belongs
to (tenant, grant, provider, field), so a ciphertext copied into another grant's row, or an
access token swapped with a refresh token, fails to decrypt instead of being accepted.
Stored form: ``v1.<base64url(nonce || ciphertext || tag)>``.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ostiary.errors import ToolkitError

_PREFIX = "v1."
_NONCE_BYTES = 12


class TokenDecryptionError(ToolkitError):
    """A stored upstream token could not be decrypted (wrong key, or not its record)."""


class TokenCipher:
    """Encrypts and decrypts upstream token strings.

    Args:
        key: 32 bytes, e.g. ``base64.b64decode(settings.federation.token_key)``.

    Example:
        >>> cipher = TokenCipher(bytes(32))
        >>> cipher.decrypt(cipher.encrypt("t0k", "ctx"), "ctx")
        't0k'
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, value: str) -> TokenCipher:
        """The cipher for a base64-encoded key (the ``federation.token_key`` setting)."""
        return cls(base64.b64decode(value, validate=True))

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def decrypt(self, stored: str, associated: str) -> str:
        if not stored.startswith(_PREFIX):
            raise TokenDecryptionError("unknown upstream token format")
        body = stored[len(_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, associated.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise TokenDecryptionError("upstream token does not decrypt with this key") from exc


def token_context(tenant_id: str, grant_id: str, provider: str, field: str) -> str:
    """The associated data binding a ciphertext to its record and field."""
    return f"ostiary-upstream-token|{tenant_id}|{grant_id}|{provider}|{field}"
