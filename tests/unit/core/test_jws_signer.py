"""The fixed-header compact JWS signer: output any JOSE library verifies (RFC 7515, RFC 7518)."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ostiary.core.jws_signer import CompactSigner

CLAIMS = {"iss": "https://as.example", "sub": "alice", "scope": "mcp:read", "exp": 4_000_000_000}


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


@pytest.mark.parametrize(
    ("alg", "key", "signature_length"),
    [
        ("ES256", ECKey.generate_key("P-256"), 64),
        ("Ed25519", OKPKey.generate_key("Ed25519"), 64),
        ("RS256", RSAKey.generate_key(2048), 256),
    ],
)
def test_each_algorithm_signs_what_joserfc_verifies(
    alg: str, key: ECKey | OKPKey | RSAKey, signature_length: int
) -> None:
    header = {"alg": alg, "kid": "k1", "typ": "at+jwt"}
    signer = CompactSigner(header, key.private_key)

    token = signer.sign(CLAIMS)

    decoded = jwt.decode(token, key, algorithms=[alg])
    assert decoded.claims == CLAIMS
    assert dict(decoded.header) == header
    protected, payload, signature = _segments(token)
    assert json.loads(protected) == header
    assert json.loads(payload) == CLAIMS
    # JWA encodings: ES256 is R || S (64 bytes), never DER; Ed25519 64; RSA-2048 256.
    assert len(signature) == signature_length


def test_a_token_signed_with_one_key_fails_with_another() -> None:
    signer = CompactSigner({"alg": "ES256"}, ECKey.generate_key("P-256").private_key)

    token = signer.sign(CLAIMS)

    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(token, ECKey.generate_key("P-256"), algorithms=["ES256"])


def test_each_signature_is_fresh() -> None:
    """ECDSA draws a new nonce per signature: two tokens of one payload differ, both valid."""
    key = ECKey.generate_key("P-256")
    signer = CompactSigner({"alg": "ES256"}, key.private_key)

    first, second = signer.sign(CLAIMS), signer.sign(CLAIMS)

    assert first != second
    assert first.rsplit(".", 1)[0] == second.rsplit(".", 1)[0]
    for token in (first, second):
        assert jwt.decode(token, key, algorithms=["ES256"]).claims == CLAIMS


@pytest.mark.parametrize(
    ("alg", "key", "message"),
    [
        ("ES256", RSAKey.generate_key(2048), "no signer for alg 'ES256' with a"),
        ("RS256", ECKey.generate_key("P-256"), "no signer for alg 'RS256' with a"),
        ("ES256", ECKey.generate_key("P-384"), "ES256 needs a P-256 key, not secp384r1"),
        ("HS256", ECKey.generate_key("P-256"), "no signer for alg 'HS256' with a"),
    ],
)
def test_an_algorithm_and_key_that_do_not_go_together_are_refused(
    alg: str, key: ECKey | RSAKey, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CompactSigner({"alg": alg}, key.private_key)
