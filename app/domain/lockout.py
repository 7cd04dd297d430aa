"""Account lockout after repeated failed logins, with exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int  # consecutive failures before the first lock
    base_seconds: int  # length of the first lock
    max_seconds: int  # no lock lasts longer than this


@dataclass(frozen=True)
class FailureOutcome:
    failures: int
    locked_until: datetime | None


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def register_failure(failures: int, now: datetime, policy: LockoutPolicy) -> FailureOutcome:
    """Count one more failure; from the threshold on, lock for base·2^(failures-threshold), capped."""
    failures += 1
    if failures < policy.threshold:
        return FailureOutcome(failures, None)
    exponent = min(failures - policy.threshold, 32)  # 2**32 s is far past any cap
    seconds = min(policy.base_seconds * 2**exponent, policy.max_seconds)
    return FailureOutcome(failures, now + timedelta(seconds=seconds))
