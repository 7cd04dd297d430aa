"""Idempotency keys: a replayed request gets its first answer back and changes nothing.

The key is claimed under a transaction-scoped advisory lock, so two copies of one request sent at
once run one after the other: the second finds the first's stored answer. The answer is stored in
the same transaction as the change it describes, so it exists exactly when the change does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey
from app.db.session import Database, driver
from app.services.errors import Invalid, Refused

RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Answer:
    """What a request got: a status and a body, or a refusal (stored too, so a replay is refused alike)."""

    status: int
    response: dict[str, Any]

    def unwrap(self) -> tuple[int, dict[str, Any]]:
        refusal = self.response.get("refused")
        if refusal is not None:
            raise Refused.restore(refusal)
        return self.status, self.response


class KeyReused(Refused):
    status = 422
    title = "Idempotency key reused"


def request_hash(payload: Any) -> str:
    """A stable fingerprint of what was asked (sorted JSON)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str:
    if not key or len(key) > 128 or not key.isprintable():
        raise Invalid(
            "Every change needs an Idempotency-Key (1 to 128 printable characters).", field="idempotency_key"
        )
    return key


async def once(
    db: Database,
    scope: str,
    key: str,
    payload: Any,
    now: datetime,
    operation: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
) -> tuple[int, dict[str, Any]]:
    """Run `operation` once per (scope, key), its answer stored in the same transaction as its changes.

    A refusal rolls the whole transaction back (nothing changed) and is then stored as the answer in a
    second, short one, so a replay of a refused request is refused the same way even if the stock has
    changed since. If a copy of the request ran in between, that copy's answer is the one returned.
    """
    fingerprint = request_hash(payload)

    async def work(session: AsyncSession) -> Answer:
        replay = await claim(session, scope, key, fingerprint)
        if replay is not None:
            return replay
        answer = Answer(201, await operation(session))
        await _store(session, scope, key, fingerprint, answer, now)
        return answer

    return await settle(db, Claim(scope, key, fingerprint), now, work)


@dataclass
class Claim:
    """The key a use case answers, and the fingerprint of its request (known once the request is resolved)."""

    scope: str
    key: str
    fingerprint: str = ""

    @property
    def lock(self) -> str:
        """The name of the key's transaction-scoped advisory lock (`CLAIM_LOCK`'s parameter)."""
        return f"idem:{self.scope}:{self.key}"


async def settle(
    db: Database, claimed: Claim, now: datetime, work: Callable[[AsyncSession], Awaitable[Answer]]
) -> tuple[int, dict[str, Any]]:
    """Run `work`, which claims the key and stores its answer in its transaction; store a refusal after.

    For use cases that claim the key themselves (in a statement that does more, see `CLAIM_LOCK` and
    `replay_of`). `claimed.fingerprint` must be set by the time `work` raises a refusal.
    """
    try:
        return (await db.run(work)).unwrap()
    except Refused as refusal:
        if isinstance(refusal, KeyReused):
            raise
        refused = Answer(refusal.status, {"refused": refusal.stored()})
        scope, key, fingerprint = claimed.scope, claimed.key, claimed.fingerprint

        async def store_refusal(session: AsyncSession) -> Answer:
            replay = await claim(session, scope, key, fingerprint)
            if replay is not None:
                return replay
            await _store(session, scope, key, fingerprint, refused, now)
            return refused

        return (await db.run(store_refusal)).unwrap()


# Waits for any copy of the request in flight. What that copy stored is visible to the *next* statement
# only (a statement reads the snapshot taken when it started, before the wait): never read the key's row
# in the statement that takes this lock.
CLAIM_LOCK = "pg_advisory_xact_lock(hashtextextended($1, 7))"
_CLAIM = f"SELECT {CLAIM_LOCK}"
_STORED = "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2"
_STORE = """
    INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
    VALUES ($1, $2, $3, $4, $5::jsonb, $6)
"""


async def claim(session: AsyncSession, scope: str, key: str, fingerprint: str) -> Answer | None:
    """Wait for any copy of this request in flight, then return its answer if it already ran."""
    pg = await driver(session)
    await pg.execute(_CLAIM, Claim(scope, key).lock)
    return replay_of(await pg.fetchrow(_STORED, scope, key), fingerprint)


def replay_of(stored: Any, fingerprint: str) -> Answer | None:
    """The stored answer of a key (a row of request_hash, status, response; None: not answered yet)."""
    if stored is None or stored["request_hash"] is None:
        return None
    if stored["request_hash"] != fingerprint:
        raise KeyReused("This Idempotency-Key was already used for a different request.")
    # SQLAlchemy's asyncpg codec decodes jsonb on the way out (and takes JSON text on the way in).
    return Answer(stored["status"], stored["response"])


async def _store(
    session: AsyncSession, scope: str, key: str, fingerprint: str, answer: Answer, now: datetime
) -> None:
    pg = await driver(session)
    await pg.execute(_STORE, scope, key, fingerprint, answer.status, json.dumps(answer.response), now)


async def purge_keys(db: Database, now: datetime) -> int:
    """Forget answers older than the retention period; a replay after that is treated as new."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < now - RETENTION)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
