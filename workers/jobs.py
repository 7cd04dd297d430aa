"""Job functions: thin adapters that call one service and return counts for logs and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.services import jobs as job_service
from app.services.auth import purge_sessions
from app.services.idempotency import purge_keys


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


async def purge_idempotency_keys(ctx: Any) -> dict[str, int]:
    """Nightly: forget the answers to requests older than the idempotency retention (7 days)."""
    return {"keys_deleted": await purge_keys(ctx["db"], _now())}
