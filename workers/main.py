"""The worker process: serves the SAQ queue, relays the outbox and records a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram
from saq import Worker
from saq.queue.postgres import PostgresQueue

from app.db.crypto import configure_keys
from app.db.models import JobRequest
from app.db.models.jobs import JOB_REQUEST_CHANNEL
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.services import health, jobs
from app.settings import Settings
from workers.settings import CRON_JOBS, FUNCTIONS, REQUEST_JOB_OPTIONS

log = logging.getLogger("workers")
JOBS_DONE = Counter("dispatch_jobs_total", "Jobs finished by the worker", ["function", "status"])
JOB_SECONDS = Histogram("dispatch_job_seconds", "Time to process one job", ["function"])


def _now() -> datetime:
    return datetime.now(UTC)


class Relay:
    """Moves committed job requests from the outbox to SAQ: woken by NOTIFY, and sweeping regardless."""

    def __init__(self, db: Database, queue: PostgresQueue, urls: DatabaseUrls, sweep_seconds: float) -> None:
        self.db, self.queue, self.urls, self.sweep_seconds = db, queue, urls, sweep_seconds
        self.wake = asyncio.Event()

    async def enqueue(self, request: JobRequest) -> None:
        await self.queue.enqueue(
            "run_request", key=f"request:{request.id}", request_id=request.id, **REQUEST_JOB_OPTIONS
        )

    async def relay_once(self) -> int:
        total = 0
        while relayed := await jobs.relay_requests(self.db, self.enqueue):
            total += relayed
        return total

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        while True:
            try:
                if listener is None or listener.is_closed():
                    listener = await asyncpg.connect(self.urls.libpq)
                    await listener.add_listener(JOB_REQUEST_CHANNEL, lambda *_: self.wake.set())
                await self.relay_once()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("outbox relay: %s; retrying", exc)
                listener = None
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can lose a cancellation
                async with asyncio.timeout(self.sweep_seconds):
                    await self.wake.wait()
            self.wake.clear()


async def _heartbeat(db: Database, worker_id: str, queue_name: str, every: float) -> None:
    started = _now()
    while True:
        try:
            await health.record_heartbeat(
                db,
                worker_id=worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                queue=queue_name,
                started_at=started,
                now=_now(),
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("heartbeat failed: %s", exc)
        await asyncio.sleep(every)


async def run_worker(settings: Settings, urls: DatabaseUrls, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM), then shut down cleanly."""
    stop = stop or asyncio.Event()
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    configure_keys(settings.security.data_key, settings.security.data_key_previous)
    db = Database(sqlalchemy_config(urls, settings.database, application_name="dispatch-worker"))
    queue = PostgresQueue.from_url(urls.libpq, name=settings.queue.name, min_size=1, max_size=4)

    async def startup(ctx: Any) -> None:
        ctx["db"], ctx["worker_id"] = db, worker_id

    async def before_process(ctx: Any) -> None:
        ctx["started"] = asyncio.get_running_loop().time()

    async def after_process(ctx: Any) -> None:
        job = ctx.get("job")
        if job is not None:
            JOBS_DONE.labels(job.function, job.status).inc()
            JOB_SECONDS.labels(job.function).observe(
                asyncio.get_running_loop().time() - ctx.get("started", 0)
            )

    worker = Worker(
        queue,
        FUNCTIONS,
        cron_jobs=CRON_JOBS,
        concurrency=settings.queue.concurrency,
        id=worker_id,
        startup=startup,
        before_process=before_process,
        after_process=after_process,
    )
    await queue.connect()
    relay = Relay(db, queue, urls, settings.queue.relay_sweep_seconds)
    tasks = [
        asyncio.create_task(worker.start(), name="saq"),
        asyncio.create_task(relay.run(), name="relay"),
        asyncio.create_task(
            _heartbeat(db, worker_id, settings.queue.name, settings.queue.heartbeat_seconds), name="heartbeat"
        ),
    ]
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if sys.platform != "win32" else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s serving queue %s", worker_id, settings.queue.name)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        stopped.cancel()
        await worker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await health.forget_worker(db, worker_id)
        await queue.disconnect()
        await db.dispose()
        log.info("worker %s stopped", worker_id)
