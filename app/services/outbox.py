"""The job-request outbox: background work asked for inside a business transaction (see jobs.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobRequest
from app.db.models.jobs import JOB_REQUEST_CHANNEL


async def request_job(session: AsyncSession, function: str, **kwargs: Any) -> int:
    """Ask for `function(**kwargs)` to run after the caller's transaction commits; returns the request id."""
    request = JobRequest(function=function, kwargs=kwargs)
    session.add(request)
    await session.flush()
    # Delivered only at commit; the relay also sweeps, so a missed wake-up only delays the job.
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": JOB_REQUEST_CHANNEL})
    return request.id
