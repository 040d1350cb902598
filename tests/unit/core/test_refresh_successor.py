"""The sealed successor of a rotated refresh token (RFC 9700 §4.14.2; NIST SP 800-38D).

Sealed by the refresh grant for the grace window, bound to the tenant, the old token's hash
and the successor's hash; anything else must fail loudly, never yield a token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from ostiary.core.cipher import SecretCipher
from ostiary.core.grants.refresh_token import open_successor, seal_successor
from ostiary.core.models import RefreshToken
from ostiary.core.secrets import hash_secret
from ostiary.errors import ConfigurationError

CIPHER = SecretCipher(bytes(range(32)), source="the test key")
OTHER = SecretCipher(bytes(range(1, 33)), source="another key")
NOW = 1_900_000_000
RAW = "successor-raw-value"


def _token(token_hash: str, tenant: str = "t1") -> RefreshToken:
    return RefreshToken(
        tenant, token_hash, "g1", "c1", "u1", ("mcp:read",), None, NOW, NOW + 60, NOW + 60
    )


def _rotated(old: RefreshToken, cipher: SecretCipher = CIPHER) -> RefreshToken:
    successor = _token(hash_secret(RAW), old.tenant_id)
    return replace(
        old,
        rotated_at=NOW,
        successor_hash=successor.token_hash,
        sealed_successor=seal_successor(cipher, old.token_hash, successor, RAW),
    )


def test_the_sealed_successor_opens_to_the_raw_token() -> None:
    old = _rotated(_token("old"))
    assert old.sealed_successor is not None
    assert old.sealed_successor.startswith("v1.")
    assert RAW not in old.sealed_successor
    assert open_successor(CIPHER, old) == RAW


@pytest.mark.parametrize(
    "moved",
    [
        lambda old: replace(old, token_hash="another-row"),
        lambda old: replace(old, tenant_id="t2"),
        lambda old: replace(old, successor_hash=hash_secret("another successor")),
    ],
    ids=["other row", "other tenant", "other successor"],
)
def test_a_sealed_successor_moved_elsewhere_does_not_open(
    moved: Callable[[RefreshToken], RefreshToken],
) -> None:
    old = _rotated(_token("old"))
    with pytest.raises(ConfigurationError, match="does not decrypt with the test key"):
        open_successor(CIPHER, moved(old))


def test_another_storage_key_does_not_open_it() -> None:
    with pytest.raises(ConfigurationError, match="every node must share one"):
        open_successor(CIPHER, _rotated(_token("old"), OTHER))


def test_a_row_without_a_sealed_successor_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="keeps no sealed successor"):
        open_successor(CIPHER, _token("old"))


def test_a_sealed_value_that_does_not_hash_to_the_successor_is_refused() -> None:
    """Sealed under the right binding but holding another token: never handed out."""
    old = _token("old")
    successor_hash = hash_secret(RAW)
    liar = _token(successor_hash)
    sealed = seal_successor(CIPHER, old.token_hash, liar, "not-the-successor")
    forged = replace(old, successor_hash=successor_hash, sealed_successor=sealed)
    with pytest.raises(ConfigurationError, match="does not match its hash"):
        open_successor(CIPHER, forged)
