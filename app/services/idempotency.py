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

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey
from app.db.session import Database
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
    """Run `operation` once per (scope, key): in a savepoint, with its answer stored beside its changes.

    A refusal rolls the savepoint back (nothing changed) and is stored as the answer, so a replay of a
    refused request is refused the same way even if the stock has changed since.
    """
    fingerprint = request_hash(payload)

    async def work(session: AsyncSession) -> Answer:
        replay = await claim(session, scope, key, fingerprint)
        if replay is not None:
            return replay
        try:
            async with session.begin_nested():
                answer = Answer(201, await operation(session))
        except Refused as refusal:
            answer = Answer(refusal.status, {"refused": refusal.stored()})
        session.add(
            IdempotencyKey(
                scope=scope,
                key=key,
                request_hash=fingerprint,
                status=answer.status,
                response=answer.response,
                created_at=now,
            )
        )
        return answer

    return (await db.run(work)).unwrap()


async def claim(session: AsyncSession, scope: str, key: str, fingerprint: str) -> Answer | None:
    """Wait for any copy of this request in flight, then return its answer if it already ran."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"), {"k": f"idem:{scope}:{key}"}
    )
    stored = await session.get(IdempotencyKey, (scope, key))
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise KeyReused("This Idempotency-Key was already used for a different request.")
    return Answer(stored.status, stored.response)


async def remember(
    session: AsyncSession,
    scope: str,
    key: str,
    fingerprint: str,
    status: int,
    response: dict[str, Any],
    now: datetime,
) -> None:
    session.add(
        IdempotencyKey(
            scope=scope, key=key, request_hash=fingerprint, status=status, response=response, created_at=now
        )
    )


async def purge_keys(db: Database, now: datetime) -> int:
    """Forget answers older than the retention period; a replay after that is treated as new."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < now - RETENTION)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
