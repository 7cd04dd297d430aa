"""When a login session stops being valid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class SessionState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    IDLE = "idle"  # unused for longer than the idle timeout
    EXPIRED = "expired"  # past its absolute end


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    token: timedelta  # lifetime of one signed token; renewed while the session is used
    touch_every: timedelta = timedelta(seconds=60)  # last-seen writes are throttled to this


def session_state(
    *,
    last_seen_at: datetime,
    expires_at: datetime,
    revoked_at: datetime | None,
    now: datetime,
    idle: timedelta,
) -> SessionState:
    if revoked_at is not None:
        return SessionState.REVOKED
    if now >= expires_at:
        return SessionState.EXPIRED
    if now - last_seen_at >= idle:
        return SessionState.IDLE
    return SessionState.ACTIVE


def needs_touch(last_seen_at: datetime, now: datetime, policy: SessionPolicy) -> bool:
    """Record activity at most once per `touch_every`, so reads do not each cost a write."""
    return now - last_seen_at >= policy.touch_every


def token_expiry(now: datetime, session_expires_at: datetime, policy: SessionPolicy) -> datetime:
    """A token never outlives its session."""
    return min(now + policy.token, session_expires_at)
