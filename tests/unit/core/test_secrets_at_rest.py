"""Signing keys and TOTP secrets sealed in the core (AES-256-GCM, NIST SP 800-38D)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from ostiary.core import totp
from ostiary.core.cipher import DecryptionError, SecretCipher, is_sealed
from ostiary.core.keys import (
    KeyRing,
    generate_signing_key,
    import_private_key,
    is_sealed_jwk,
    open_private_jwk,
    seal_signing_key,
)
from ostiary.core.models import SigningKey, User
from ostiary.core.users import open_totp_secret, with_totp_secret
from ostiary.errors import ConfigurationError
from ostiary.federation.cipher import TokenCipher, TokenDecryptionError

CIPHER = SecretCipher(bytes(range(32)), source="the test key")
OTHER = SecretCipher(bytes(range(1, 33)), source="another key")
NOW = 1_900_000_000


def _user(user_id: str = "u1", tenant: str = "t1") -> User:
    return User(tenant, user_id, f"name-{user_id}", "hash", NOW)


# -- the cipher ------------------------------------------------------------------------------


def test_federation_uses_the_core_cipher() -> None:
    assert TokenCipher is SecretCipher
    assert TokenDecryptionError is DecryptionError


def test_round_trip_fresh_nonce_and_context_binding() -> None:
    sealed = CIPHER.encrypt("s3cret", "ctx-a")
    assert is_sealed(sealed)
    assert "s3cret" not in sealed
    assert CIPHER.encrypt("s3cret", "ctx-a") != sealed
    assert CIPHER.decrypt(sealed, "ctx-a") == "s3cret"
    # 12-byte nonce + 6 plaintext bytes + 16-byte tag, base64url without padding.
    assert len(base64.urlsafe_b64decode(sealed[3:] + "==")) == 12 + 6 + 16
    with pytest.raises(DecryptionError, match=r"^the sealed value does not decrypt with the test"):
        CIPHER.decrypt(sealed, "ctx-b")
    with pytest.raises(DecryptionError, match=r"with another key$"):
        OTHER.decrypt(sealed, "ctx-a")
    with pytest.raises(DecryptionError, match=r"^not a sealed value \(unknown format\)$"):
        CIPHER.decrypt("JBSWY3DPEHPK3PXP", "ctx-a")


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match=r"^an AES-256-GCM key must be 32 bytes$"):
        SecretCipher(bytes(16))
    with pytest.raises(ValueError, match=r"^the setting is not valid base64$"):
        SecretCipher.from_base64("not base64!", source="the setting")


def test_base32_secrets_never_look_sealed() -> None:
    """Legacy rows are told apart by the '.': the base32 alphabet has none (RFC 4648 §6)."""
    for _ in range(50):
        assert not is_sealed(totp.new_secret())


# -- signing keys ------------------------------------------------------------------------------


def test_generated_key_is_stored_sealed_without_private_members() -> None:
    record = generate_signing_key("t1", "ES256", NOW, cipher=CIPHER)
    assert list(record.private_jwk) == ["sealed"]
    assert is_sealed(record.private_jwk["sealed"])
    opened = open_private_jwk(record, CIPHER)
    assert opened["kty"] == "EC"
    assert opened["crv"] == "P-256"
    stored = json.dumps(record.private_jwk)
    assert opened["d"] not in stored
    assert '"d"' not in stored
    assert ECKey.import_key(opened).thumbprint() == record.kid


@pytest.mark.parametrize("alg", ["ES256", "Ed25519", "RS256"])
def test_every_algorithm_seals_and_signs(alg: str) -> None:
    record = generate_signing_key("t1", alg, NOW, cipher=CIPHER)
    ring = KeyRing.from_records([record], NOW, CIPHER)
    assert ring is not None
    token = jwt.encode({"alg": alg}, {"sub": "x"}, ring.active_key, algorithms=[alg])
    public = ring.jwks()["keys"][0]
    assert public["kid"] == record.kid
    assert public["use"] == "sig"
    assert public["alg"] == alg
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(public)
    verified = jwt.decode(token, import_private_key(record, CIPHER), algorithms=[alg])
    assert verified.claims == {"sub": "x"}


def test_sealed_jwk_copied_under_another_kid_does_not_open() -> None:
    a = generate_signing_key("t1", "ES256", NOW, cipher=CIPHER)
    b = generate_signing_key("t1", "ES256", NOW, cipher=CIPHER)
    swapped = replace(b, private_jwk=a.private_jwk)
    with pytest.raises(ConfigurationError) as caught:
        open_private_jwk(swapped, CIPHER)
    assert str(caught.value) == (
        f"signing key {b.kid} of tenant 't1' does not decrypt with the test key: it was sealed "
        "with another storage encryption key. Set storage.encryption_key "
        "(OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore the storage.key file in "
        "data_dir it came from"
    )
    with pytest.raises(ConfigurationError):
        open_private_jwk(replace(a, tenant_id="t2"), CIPHER)


def test_ring_with_the_wrong_key_raises_instead_of_returning_nothing() -> None:
    record = generate_signing_key("t1", "ES256", NOW, cipher=CIPHER)
    with pytest.raises(ConfigurationError, match="OSTIARY_STORAGE__ENCRYPTION_KEY"):
        KeyRing.from_records([record], NOW, OTHER)


def test_legacy_plain_row_loads_signs_and_seals_on_request() -> None:
    key = ECKey.generate_key("P-256")
    legacy = SigningKey("t1", key.thumbprint(), "ES256", dict(key.as_dict(private=True)), NOW)
    assert not is_sealed_jwk(legacy.private_jwk)
    ring = KeyRing.from_records([legacy], NOW, CIPHER)
    assert ring is not None
    assert ring.active.kid == legacy.kid
    token = jwt.encode({"alg": "ES256"}, {"sub": "x"}, ring.active_key, algorithms=["ES256"])
    assert jwt.decode(token, key, algorithms=["ES256"]).claims == {"sub": "x"}
    sealed = seal_signing_key(legacy, CIPHER)
    assert is_sealed_jwk(sealed.private_jwk)
    assert open_private_jwk(sealed, CIPHER) == legacy.private_jwk
    assert seal_signing_key(sealed, CIPHER) is sealed  # already sealed: unchanged


# -- TOTP secrets ----------------------------------------------------------------------------


def test_totp_secret_is_stored_sealed_and_opens() -> None:
    secret = totp.new_secret()
    enrolled = with_totp_secret(_user(), secret, CIPHER)
    assert enrolled.totp_secret is not None
    assert is_sealed(enrolled.totp_secret)
    assert secret not in enrolled.totp_secret
    assert open_totp_secret(enrolled, CIPHER) == secret
    assert with_totp_secret(enrolled, None, CIPHER).totp_secret is None
    assert open_totp_secret(_user(), CIPHER) is None


def test_legacy_plain_totp_secret_is_read_as_is() -> None:
    legacy = replace(_user(), totp_secret="JBSWY3DPEHPK3PXP")
    assert open_totp_secret(legacy, CIPHER) == "JBSWY3DPEHPK3PXP"


def test_sealed_totp_secret_copied_to_another_user_does_not_open() -> None:
    sealed = with_totp_secret(_user("u1"), totp.new_secret(), CIPHER).totp_secret
    copied = replace(_user("u2"), totp_secret=sealed)
    with pytest.raises(ConfigurationError) as caught:
        open_totp_secret(copied, CIPHER)
    assert str(caught.value) == (
        "the TOTP secret of user u2 does not decrypt with the test key: it was sealed with "
        "another storage encryption key. Set storage.encryption_key "
        "(OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore the storage.key file in "
        "data_dir it came from"
    )
    with pytest.raises(ConfigurationError):
        open_totp_secret(replace(_user("u1", tenant="t2"), totp_secret=sealed), CIPHER)
    with pytest.raises(ConfigurationError):
        open_totp_secret(replace(_user("u1"), totp_secret=sealed), OTHER)
