"""Job functions: thin adapters that call one service and return counts for logs and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.services import jobs as job_service
from app.services.auth import purge_sessions


def _now() -> datetime:
    return datetime.now(UTC)


async def run_request(ctx: Any, *, request_id: int) -> dict[str, int]:
    """Run one job request from the outbox (exactly once, whatever the number of deliveries)."""
    return await job_service.run_request(
        ctx["db"], request_id, job_service.JOB_BODIES, worker_id=ctx["worker_id"], now=_now()
    )


async def purge_old_sessions(ctx: Any) -> dict[str, int]:
    """Nightly: delete sessions that ended more than 30 days ago."""
    return {"sessions_deleted": await purge_sessions(ctx["db"], before=_now() - timedelta(days=30))}
