"""Signed, short-lived session tokens (JWT, HS256). The token names a session row; the row decides."""

from __future__ import annotations

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
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=kind,
            issuer=ISSUER,
            options={"require": ["sid", "exp", "aud", "iss"]},
        )
        return TokenClaims(UUID(payload["sid"]), kind, datetime.fromtimestamp(payload["exp"], tz=UTC))
    except (jwt.InvalidTokenError, ValueError, KeyError):
        return None
