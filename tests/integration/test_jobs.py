"""The job outbox: a request lives or dies with its transaction and runs exactly once."""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.db.models import JobPing, JobRequest, Site
from app.services.jobs import JOB_BODIES, relay_requests, request_job, run_request
from workers.main import run_worker


class Boom(Exception):
    pass


async def count(db, model):
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_a_job_requested_in_a_rolled_back_transaction_never_exists(db):
    with pytest.raises(Boom):
        async with db.transaction() as session:
            session.add(Site(code="TMP", name="Temporary"))
            await request_job(session, "ping")
            raise Boom
    assert await count(db, JobRequest) == 0
    enqueued = []
    assert await relay_requests(db, lambda r: _collect(enqueued, r)) == 0
    assert enqueued == []


async def _collect(bucket, request):
    bucket.append(request.id)


async def test_a_committed_request_relayed_twice_runs_once(db):
    async with db.transaction() as session:
        request_id = await request_job(session, "ping")
    first, second = [], []
    assert await relay_requests(db, lambda r: _collect(first, r)) == 1
    # The relay died after enqueueing but before its commit was seen: the request is relayed again.
    async with db.transaction() as session:
        (await session.get(JobRequest, request_id)).relayed_at = None
    assert await relay_requests(db, lambda r: _collect(second, r)) == 1
    assert first == second == [request_id]
    now = datetime.now(UTC)
    results = [await run_request(db, request_id, JOB_BODIES, worker_id="w1", now=now) for _ in first + second]
    assert results == [{"pings": 1}, {"skipped": 1}]
    assert await count(db, JobPing) == 1


async def test_concurrent_deliveries_of_one_request_run_it_once(db):
    async with db.transaction() as session:
        request_id = await request_job(session, "ping")
    now = datetime.now(UTC)
    results = await asyncio.gather(
        *[run_request(db, request_id, JOB_BODIES, worker_id=f"w{i}", now=now) for i in range(8)]
    )
    assert sorted(r.get("pings", 0) for r in results) == [0] * 7 + [1]
    assert await count(db, JobPing) == 1


async def test_the_worker_process_relays_and_runs_a_request_end_to_end(db, db_urls, test_settings):
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(test_settings, db_urls, stop=stop))
    try:
        async with db.transaction() as session:
            request_id = await request_job(session, "ping")
        for _ in range(200):
            async with db.sessions() as s:
                done = await s.scalar(select(JobRequest.completed_at).where(JobRequest.id == request_id))
                beats = await s.scalar(select(func.count()).select_from(JobPing))
            if done:
                break
            await asyncio.sleep(0.05)
        assert done is not None, "the worker did not run the request within 10 s"
        assert beats == 1
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)
