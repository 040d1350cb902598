"""Upstream tokens encrypted at rest (NIST SP 800-38D; MCP BCP token storage).

The AES-256-GCM cipher itself lives in :mod:`ostiary.core.cipher`, shared with the signing
keys and TOTP secrets; this module names it for federation and builds the associated data
that binds an upstream token to its record: tenant, grant, provider and field, so a ciphertext
copied into another grant's row, or an access token swapped with a refresh token, fails to
decrypt instead of being accepted. Keyed by the ``federation.token_key`` setting.
"""

from __future__ import annotations

from ostiary.core.cipher import DecryptionError, SecretCipher

#: The upstream-token cipher (the shared AES-256-GCM cipher under its federation name).
TokenCipher = SecretCipher
#: Raised when a stored upstream token does not decrypt (wrong key, or not its record).
TokenDecryptionError = DecryptionError

__all__ = ["TokenCipher", "TokenDecryptionError", "token_context"]


def token_context(tenant_id: str, grant_id: str, provider: str, field: str) -> str:
    """The associated data binding a ciphertext to its record and field."""
    return f"ostiary-upstream-token|{tenant_id}|{grant_id}|{provider}|{field}"
