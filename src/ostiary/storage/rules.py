"""Classification of presented codes and refresh tokens (OAuth 2.1 §4.1.3; RFC 9700 §4.14.2).

Every backend performs its atomic step (a locked dict update or a conditional SQL UPDATE)
and, when that step did not succeed, classifies the stored record with these functions, so
the order of the checks is identical everywhere. The retention rules every backend shares
live here too, free of any driver, so the memory backend loads without SQLAlchemy.
"""

from __future__ import annotations

from ostiary.core.models import AuthorizationCode, ConsumeStatus, RefreshToken, RotateStatus

#: How long an upstream token saved under a ``pending:<id>`` grant id (a login that never
#: reached consent) is kept before ``purge_expired`` removes it (every backend).
PENDING_UPSTREAM_TTL = 3600


def rotation_status(
    token: RefreshToken,
    now: int,
    grace_seconds: int,
    successor: RefreshToken | None = None,
) -> RotateStatus:
    """Classify a presented refresh token (RFC 9700 §4.14.2), ignoring NOT_FOUND.

    Shared by every backend so the order of the checks is the same everywhere: a revoked
    token is REVOKED even when also expired; an unrotated one is OK (it may rotate). A rotated
    one is SUPERSEDED only when it is the immediately previous token: rotated within the grace
    window, its sealed successor kept, and that ``successor`` (the record its
    ``successor_hash`` names) still unrotated and unrevoked. Anything else that was rotated is
    REUSED: an older token, a replay after the window, or with ``grace_seconds=0`` any replay,
    even within the same second. The immediately previous token whose successor has expired
    is EXPIRED.
    """
    if token.revoked_at is not None:
        return RotateStatus.REVOKED
    if token.expires_at <= now or token.idle_expires_at <= now:
        return RotateStatus.EXPIRED
    if token.rotated_at is None:
        return RotateStatus.OK
    in_window = grace_seconds > 0 and token.rotated_at >= now - grace_seconds
    if (
        not in_window
        or token.sealed_successor is None
        or successor is None
        or successor.token_hash != token.successor_hash
        or successor.rotated_at is not None
        or successor.revoked_at is not None
    ):
        return RotateStatus.REUSED
    if successor.expires_at <= now or successor.idle_expires_at <= now:
        return RotateStatus.EXPIRED  # an idle TTL shorter than the window ran out
    return RotateStatus.SUPERSEDED


def consume_status(code: AuthorizationCode, now: int) -> ConsumeStatus:
    """Classify a presented code: a consumed code is REPLAYED even after it expired."""
    if code.consumed_at is not None:
        return ConsumeStatus.REPLAYED
    if code.expires_at <= now:
        return ConsumeStatus.EXPIRED
    return ConsumeStatus.OK
