"""Helpers to forge DPoP proofs, good and bad, for the AS and RS tests (RFC 9449 §4)."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ostiary.client.dpop import access_token_hash
from ostiary.core.dpop import jwk_thumbprint

Key = ECKey | OKPKey | RSAKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(key: Key) -> str:
    return jwk_thumbprint(key.as_dict(private=False))


def proof(
    key: Key,
    method: str,
    url: str,
    *,
    now: int,
    alg: str = "ES256",
    access_token: str | None = None,
    nonce: str | None = None,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """A proof signed by ``key``; ``header``/``claims`` override or add members (None drops)."""
    body: dict[str, Any] = {
        "jti": jti or str(uuid.uuid4()),
        "htm": method,
        "htu": url,
        "iat": now,
    }
    if access_token is not None:
        body["ath"] = access_token_hash(access_token)
    if nonce is not None:
        body["nonce"] = nonce
    head: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    head.update(header or {})
    body.update(claims or {})
    head = {k: v for k, v in head.items() if v is not None}
    body = {k: v for k, v in body.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc: EdDSA (RFC 9864)
        return jwt.encode(head, body, key, algorithms=[alg])


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWS (never acceptable)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data
