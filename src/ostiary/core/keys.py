"""Access-token signing keys and their JWKS (RFC 7517, RFC 7638 thumbprint kids; RFC 9068 §2.1).

One key signs at a time. Rotation makes a new key active and retires the old one; a retired key
stays published in the JWKS until every token it signed has expired, so resource servers never
see an unknown ``kid`` for a live token. ES256 is the default: measured with joserfc here,
verification (what every resource server does per request) runs ~9.5k/s for ES256 against ~7.9k/s
for Ed25519, and the JOSE "EdDSA" name is deprecated by RFC 9864.

The private JWK is stored sealed (AES-256-GCM, :mod:`ostiary.core.cipher`) as
``{"sealed": "v1.…"}`` in the same JSON column, the associated data naming tenant, kid and field
so a sealed key copied under another kid does not open. Rows written before sealing hold the
plain JWK; they still load, and are sealed again on the next write (start-up or rotation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey

from ostiary.core.cipher import DecryptionError, SecretCipher
from ostiary.core.jws_signer import CompactSigner
from ostiary.core.models import SigningKey
from ostiary.errors import ConfigurationError

JoseKey = ECKey | OKPKey | RSAKey
SEALED_MEMBER = "sealed"


def _associated(tenant_id: str, kid: str) -> str:
    return f"ostiary-signing-key|{tenant_id}|{kid}|private_jwk"


def is_sealed_jwk(private_jwk: dict[str, Any]) -> bool:
    """True for the stored form ``{"sealed": "v1.…"}``; False for a legacy plain JWK."""
    return set(private_jwk) == {SEALED_MEMBER} and isinstance(private_jwk[SEALED_MEMBER], str)


def seal_signing_key(record: SigningKey, cipher: SecretCipher) -> SigningKey:
    """``record`` with its private JWK sealed; a record already sealed comes back as it is."""
    if is_sealed_jwk(record.private_jwk):
        return record
    plain = json.dumps(record.private_jwk, sort_keys=True, separators=(",", ":"))
    sealed = cipher.encrypt(plain, _associated(record.tenant_id, record.kid))
    return replace(record, private_jwk={SEALED_MEMBER: sealed})


def open_private_jwk(record: SigningKey, cipher: SecretCipher) -> dict[str, Any]:
    """The plain private JWK of a stored record (sealed, or a legacy plain row).

    Raises:
        ConfigurationError: The storage encryption key is not the one that sealed it.
    """
    if not is_sealed_jwk(record.private_jwk):
        return dict(record.private_jwk)
    try:
        plain = cipher.decrypt(
            record.private_jwk[SEALED_MEMBER], _associated(record.tenant_id, record.kid)
        )
    except DecryptionError:
        raise ConfigurationError(
            f"signing key {record.kid} of tenant {record.tenant_id!r} does not decrypt with "
            f"{cipher.source}: it was sealed with another storage encryption key. Set "
            "storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore "
            "the storage.key file in data_dir it came from"
        ) from None
    opened: dict[str, Any] = json.loads(plain)
    return opened


def generate_signing_key(tenant_id: str, alg: str, now: int, *, cipher: SecretCipher) -> SigningKey:
    """A new key for ``alg`` (ES256, Ed25519 or RS256), sealed, its kid the RFC 7638 thumbprint."""
    key: JoseKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256")
    elif alg == "Ed25519":
        key = OKPKey.generate_key("Ed25519")
    elif alg == "RS256":
        key = RSAKey.generate_key(2048)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    kid = key.thumbprint()
    record = SigningKey(
        tenant_id=tenant_id,
        kid=kid,
        alg=alg,
        private_jwk=dict(key.as_dict(private=True)),
        created_at=now,
    )
    return seal_signing_key(record, cipher)


def import_private_key(record: SigningKey, cipher: SecretCipher) -> JoseKey:
    """The joserfc key object for a stored record."""
    data = open_private_jwk(record, cipher)
    kty = data.get("kty")
    if kty == "EC":
        return ECKey.import_key(data)
    if kty == "OKP":
        return OKPKey.import_key(data)
    if kty == "RSA":
        return RSAKey.import_key(data)
    raise ValueError(f"stored key {record.kid} has unknown kty {kty!r}")


def public_jwk(record: SigningKey, key: JoseKey) -> dict[str, Any]:
    """The public half of ``key`` (imported from ``record``), with ``kid``, ``alg``, ``use``."""
    jwk = dict(key.as_dict(private=False))
    jwk.update({"kid": record.kid, "alg": record.alg, "use": "sig"})
    return jwk


def retire(record: SigningKey, *, now: int, publish_for_seconds: int) -> SigningKey:
    """Mark a key as no longer signing; it stays in JWKS for ``publish_for_seconds``."""
    return replace(record, retired_at=now, expires_at=now + publish_for_seconds)


#: The JWT ``typ`` of an access token (RFC 9068 §2.1), in the header the ring signs under.
ACCESS_TOKEN_JWT_TYPE = "at+jwt"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The active signing key (imported once) and the published set, for one tenant."""

    active: SigningKey
    active_key: JoseKey
    published: tuple[SigningKey, ...]
    #: Imported public+private key objects by kid, for verifying our own tokens.
    by_kid: dict[str, tuple[str, JoseKey]]
    #: Signs access tokens with the active key under ``alg``, ``kid`` and ``typ: at+jwt``.
    access_token_signer: CompactSigner

    @classmethod
    def from_records(
        cls, records: Sequence[SigningKey], now: int, cipher: SecretCipher
    ) -> KeyRing | None:
        """Pick the newest unretired key as active; None when there is none.

        Raises:
            ConfigurationError: A live key does not open with the storage encryption key.
        """
        live = [k for k in records if k.expires_at is None or k.expires_at > now]
        signing = [k for k in live if k.retired_at is None]
        if not signing:
            return None
        active = max(signing, key=lambda k: k.created_at)
        by_kid = {k.kid: (k.alg, import_private_key(k, cipher)) for k in live}
        active_key = by_kid[active.kid][1]
        header = {"alg": active.alg, "kid": active.kid, "typ": ACCESS_TOKEN_JWT_TYPE}
        return cls(
            active=active,
            active_key=active_key,
            published=tuple(live),
            by_kid=by_kid,
            access_token_signer=CompactSigner(header, active_key.private_key),
        )

    def jwks(self) -> dict[str, Any]:
        """The RFC 7517 JWK Set of every published key (public parts only)."""
        return {"keys": [public_jwk(k, self.by_kid[k.kid][1]) for k in self.published]}
