"""Time-based one-time passwords for local users' second factor (RFC 6238; HOTP, RFC 4226).

SHA-1 HMAC, 6 digits and a 30-second step: the parameters every authenticator app supports
(RFC 6238 §4, the Google Authenticator key-URI format). ``verify`` accepts one step of clock
drift either way (RFC 6238 §5.2) and returns the matched time step so that the caller can
refuse a second use of the same code (§5.2: "the verifier MUST NOT accept the second attempt
of the same OTP").
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
#: Accepted drift, in steps, on either side of the current one.
DRIFT_STEPS = 1
SECRET_BYTES = 20


def new_secret() -> str:
    """A random 160-bit shared secret, base32 without padding (RFC 4226 §4 R6)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    """The HOTP value for ``counter`` (RFC 4226 §5.3, dynamic truncation)."""
    # RFC 4226 and RFC 6238 define the OTP over HMAC-SHA-1; authenticator apps default to it.
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), "sha1").digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def time_step(now: int) -> int:
    return now // STEP_SECONDS


def totp(secret: str, now: int) -> str:
    """The code valid at Unix time ``now`` (RFC 6238 §4.2)."""
    return hotp(secret, time_step(now))


def verify(secret: str, code: str, now: int) -> int | None:
    """The time step ``code`` belongs to, within the drift window; None when it matches none.

    Every candidate is compared in constant time and all of them are computed, so the answer
    takes the same time whichever step (if any) matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = time_step(now)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            matched = step
    return matched


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app imports (usually as a QR code)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"
