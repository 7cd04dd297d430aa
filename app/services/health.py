"""Health of the parts: database, job queue, workers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from app.db.models import JobRequest, WorkerHeartbeat
from app.db.session import Database
from app.services.errors import N_

OUTBOX_STUCK_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # an English msgid with {placeholders}, translated where it is shown
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def detail_text(self) -> str:
        return self.detail.format(**self.facts)


async def readiness(
    db: Database, *, now: datetime, worker_stale_after: timedelta, live_listening: bool | None = None
) -> list[Check]:
    """One check per part; a part that cannot be reached is reported, never raised.

    `live_listening` is the web process's own LISTEN connection for the boards (None in other processes):
    down only while its watchdog reconnects it, so a lasting failure shows here.
    """
    live = []
    if live_listening is not None:
        detail = N_("listening for board events") if live_listening else N_("reconnecting to board events")
        live.append(Check("live", live_listening, detail))
    try:
        started = time.perf_counter()
        async with db.reads() as session:
            await session.execute(text("SELECT 1"))
            database = Check(
                "database",
                True,
                N_("answers in {ms} ms"),
                {"ms": round((time.perf_counter() - started) * 1000, 1)},
            )
            stuck = int(
                await session.scalar(
                    select(func.count()).where(
                        JobRequest.relayed_at.is_(None), JobRequest.created_at < now - OUTBOX_STUCK_AFTER
                    )
                )
                or 0
            )
            last_beat = await session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
    except Exception as exc:  # the point of a health check is to report failures, whatever they are
        unreachable = N_("database unreachable ({error})")
        return [
            Check(name, False, unreachable, {"error": type(exc).__name__})
            for name in ("database", "queue", "worker")
        ] + live
    if stuck == 0:
        queue = Check("queue", True, N_("job requests relayed"))
    else:
        queue = Check("queue", False, N_("{n} job requests waiting for over a minute"), {"n": stuck})
    if last_beat is None:
        worker = Check("worker", False, N_("no worker has started"))
    else:
        age = round((now - last_beat).total_seconds())
        worker = Check(
            "worker", age < worker_stale_after.total_seconds(), N_("last heartbeat {s} s ago"), {"s": age}
        )
    return [database, queue, worker, *live]


async def record_heartbeat(
    db: Database, *, worker_id: str, hostname: str, pid: int, queue: str, started_at: datetime, now: datetime
) -> None:
    async with db.transaction() as session:
        values = {
            "worker_id": worker_id,
            "hostname": hostname,
            "pid": pid,
            "queue": queue,
            "started_at": started_at,
            "beat_at": now,
        }
        await session.execute(
            insert(WorkerHeartbeat)
            .values(values)
            .on_conflict_do_update(index_elements=[WorkerHeartbeat.worker_id], set_={"beat_at": now})
        )


async def forget_worker(db: Database, worker_id: str) -> None:
    """A worker that stops cleanly removes its heartbeat so readiness reflects it at once."""
    async with db.transaction() as session:
        await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))
