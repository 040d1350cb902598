"""Classification of presented codes and refresh tokens (OAuth 2.1 §4.1.3; RFC 9700 §4.14.2).

Every backend performs its atomic step (a locked dict update or a conditional SQL UPDATE)
and, when that step did not succeed, classifies the stored record with these functions, so
the order of the checks is identical everywhere.
"""

from __future__ import annotations

from ostiary.core.models import AuthorizationCode, ConsumeStatus, RefreshToken, RotateStatus


def rotation_status(token: RefreshToken, now: int, grace_seconds: int) -> RotateStatus:
    """Classify a presented refresh token (RFC 9700 §4.14.2), ignoring NOT_FOUND.

    Shared by every backend so the order of the checks is the same everywhere: a revoked
    token is REVOKED even when also expired; a rotated token inside the grace window is OK.
    """
    if token.revoked_at is not None:
        return RotateStatus.REVOKED
    if token.expires_at <= now or token.idle_expires_at <= now:
        return RotateStatus.EXPIRED
    if token.rotated_at is None:
        return RotateStatus.OK
    # grace_seconds=0 means no grace at all, even within the same second.
    if grace_seconds > 0 and token.rotated_at >= now - grace_seconds:
        return RotateStatus.OK
    return RotateStatus.REUSED


def consume_status(code: AuthorizationCode, now: int) -> ConsumeStatus:
    """Classify a presented code: a consumed code is REPLAYED even after it expired."""
    if code.consumed_at is not None:
        return ConsumeStatus.REPLAYED
    if code.expires_at <= now:
        return ConsumeStatus.EXPIRED
    return ConsumeStatus.OK
