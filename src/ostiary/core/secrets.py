"""Random secrets and their at-rest hashes (OAuth 2.1 §7.5; RFC 9700 §4.14).

Codes, refresh tokens, client secrets, registration access tokens and session ids are
server-generated with 256 bits of entropy, so a plain SHA-256 is the right at-rest hash
(a slow password hash buys nothing against an unguessable value). Comparisons of presented
values go through :func:`secrets_equal`, which is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_secret(nbytes: int = TOKEN_BYTES) -> str:
    """A URL-safe random string with ``nbytes`` of entropy."""
    return secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    """The at-rest form of a secret: lowercase hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def matches_hash(presented: str, stored_hash: str | None) -> bool:
    """True when ``presented`` hashes to ``stored_hash`` (constant-time)."""
    if stored_hash is None:
        return False
    return secrets_equal(hash_secret(presented), stored_hash)
