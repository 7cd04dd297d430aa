"""Writes to the append-only access journal, inside the caller's transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AccessEvent

# Keys that must never reach the journal, whatever a caller passes.
_SECRET_KEYS = {"password", "new_password", "token", "secret", "password_hash"}


async def record(
    session: AsyncSession,
    event: str,
    *,
    actor_id: UUID | None = None,
    actor_name: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    clean = {k: v for k, v in detail.items() if k not in _SECRET_KEYS}
    await session.execute(
        insert(AccessEvent).values(event=event, actor_id=actor_id, actor_name=actor_name, ip=ip, detail=clean)
    )
