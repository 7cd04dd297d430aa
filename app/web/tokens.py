"""Signed, short-lived session tokens (JWT, HS256). The token names a session row; the row decides."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import jwt

ISSUER = "stock-dispatch"


@dataclass(frozen=True)
class TokenClaims:
    session_id: UUID
    kind: str  # "browser" or "api"
    expires_at: datetime


def issue_token(secret: str, session_id: UUID, kind: str, expires_at: datetime, now: datetime) -> str:
    payload = {"sid": str(session_id), "iss": ISSUER, "aud": kind, "iat": now, "exp": expires_at}
    return jwt.encode(payload, secret, algorithm="HS256")


def read_token(secret: str, token: str, kind: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token of `kind`, or None for anything else."""
    verified = _verified(secret, token, kind)
    if verified is None:
        return None
    session_id, expires = verified
    if expires <= time.time():  # as PyJWT's own check (no leeway): valid strictly before `exp`
        return None
    return TokenClaims(session_id, kind, datetime.fromtimestamp(expires, tz=UTC))


# Tokens whose signature and fixed claims checked out: (secret, token, kind) -> (session id, exp). The
# check is a pure function of those three (PyJWT's decode is ~0.3 ms, most of it a per-character scan of
# the token), so an API client's token is verified once, not on each of its requests; the expiry, which
# depends on the clock, is checked on every use, and the session row still decides (revocation, idle).
# Only successes are kept, so a token refused once is checked again; bounded, oldest out first.
_VERIFIED: dict[tuple[str, str, str], tuple[UUID, float]] = {}
_VERIFIED_MAX = 4096


def _verified(secret: str, token: str, kind: str) -> tuple[UUID, float] | None:
    cache_key = (secret, token, kind)
    if (found := _VERIFIED.get(cache_key)) is not None:
        return found
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=kind,
            issuer=ISSUER,
            options={"require": ["sid", "exp", "aud", "iss"], "verify_exp": False},
        )
        expires = payload["exp"]
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            return None
        verified = (UUID(payload["sid"]), float(expires))
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        return None
    if len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]
    _VERIFIED[cache_key] = verified
    return verified
