"""Argon2id password hashes, computed off the event loop (one hash costs ~150 ms of CPU)."""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash

from app.services.errors import N_

_hasher = PasswordHash.recommended()
# Verifying against this keeps the time of a login for an unknown user equal to a real one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_LENGTH = 10


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    return await anyio.to_thread.run_sync(_hasher.verify, password, password_hash or _DUMMY_HASH) and (
        password_hash is not None
    )


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return N_("A password needs at least {min} characters.")
    if password.strip() != password:
        return N_("A password cannot start or end with a space.")
    return None
