"""Reads behind the ops screens about background jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobPing, JobRequest


@dataclass(frozen=True)
class RequestStatus:
    id: int
    function: str
    requested_at: datetime
    relayed_at: datetime | None
    completed_at: datetime | None
    worker_id: str | None

    @property
    def round_trip_ms(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.requested_at).total_seconds() * 1000


async def request_status(session: AsyncSession, request_id: int) -> RequestStatus | None:
    row = (
        await session.execute(
            select(
                JobRequest.id,
                JobRequest.function,
                JobRequest.created_at,
                JobRequest.relayed_at,
                JobRequest.completed_at,
                JobPing.worker_id,
            )
            .outerjoin(JobPing, JobPing.request_id == JobRequest.id)
            .where(JobRequest.id == request_id)
            .limit(1)
        )
    ).one_or_none()
    return RequestStatus(*row) if row else None
