"""Background jobs through an outbox.

A use case that needs background work calls `request_job` inside its own transaction: the request
row and the business change commit or roll back together. The worker relays committed requests to
SAQ (job key = request id, so relaying twice enqueues once while the job is pending), and
`run_request` marks the request done in the same transaction as the job's own writes, so a request
relayed again after it ran is skipped instead of applied twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobPing, JobRequest
from app.db.session import Database
from app.services import dispatch_runs, imports, journal
from app.services.outbox import request_job

# A job body: runs inside the transaction that marks its request done; returns counts for logs.
JobBody = Callable[[AsyncSession, dict[str, Any]], Awaitable[dict[str, int]]]


async def relay_requests(
    db: Database, enqueue: Callable[[JobRequest], Awaitable[object]], limit: int = 100
) -> int:
    """Hand committed, unrelayed requests to the queue; returns how many were relayed.

    Rows are claimed with SKIP LOCKED so several workers can relay side by side. If the process dies
    between enqueue and commit the rows are relayed again, which the job key and `run_request` absorb.
    """
    async with db.transaction() as session:
        requests = list(
            await session.scalars(
                select(JobRequest)
                .where(JobRequest.relayed_at.is_(None))
                .order_by(JobRequest.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for request in requests:
            await enqueue(request)
        if requests:
            await session.execute(
                update(JobRequest)
                .where(JobRequest.id.in_([r.id for r in requests]))
                .values(relayed_at=text("now()"))
            )
    return len(requests)


async def run_request(
    db: Database, request_id: int, bodies: dict[str, JobBody], *, worker_id: str, now: datetime
) -> dict[str, int]:
    """Run a relayed request exactly once: skipped if already done, marked done with the job's writes."""
    async with db.transaction() as session:
        request = await session.get(JobRequest, request_id, with_for_update=True)
        if request is None or request.completed_at is not None:
            return {"skipped": 1}
        body = bodies.get(request.function)
        if body is None:
            raise LookupError(f"no job named {request.function!r}")
        result = await body(session, {**request.kwargs, "request_id": request_id, "worker_id": worker_id})
        request.completed_at, request.result = now, result
        return result


async def ping(session: AsyncSession, kwargs: dict[str, Any]) -> dict[str, int]:
    """The queue round trip: records which worker ran the request."""
    session.add(JobPing(request_id=kwargs["request_id"], worker_id=kwargs["worker_id"]))
    return {"pings": 1}


JOB_BODIES: dict[str, JobBody] = {
    "ping": ping,
    imports.JOB: imports.import_job,
    dispatch_runs.JOB: dispatch_runs.dispatch_run_job,
}


async def check_queue(db: Database, *, actor_id: Any, actor_name: str, ip: str | None) -> int:
    """Ask a worker to answer a ping through the outbox; returns the request id to watch."""
    async with db.transaction() as session:
        request_id = await request_job(session, "ping")
        await journal.record(
            session, "ops.queue_check", actor_id=actor_id, actor_name=actor_name, ip=ip, request_id=request_id
        )
        return request_id
