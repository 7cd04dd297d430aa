"""Import of products, locations and opening stock from CSV or XLSX files.

Every row is read and checked first; the file is written only when it holds no error, in one
transaction, so a file is imported whole or not at all. Writes are upserts and "bring the stock to"
adjustments, so importing the same file again changes nothing. Small files are imported during the
upload; large ones by the worker, through the outbox, reporting their progress as they are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any
from uuid import UUID

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import ImportBatch
from app.db.session import Database
from app.services import journal
from app.services.catalog import LocationData, ProductData, UpsertCounts, upsert_locations, upsert_products
from app.services.errors import N_, Invalid, Refused
from app.services.import_checks import check_locations, check_products, check_stock, site_ids_by_code, slices
from app.services.import_files import estimate_rows, open_table
from app.services.import_orders import OrdersReady, check_orders
from app.services.import_rows import MAX_ERRORS, ImportKind, Problem, RowReader
from app.services.orders import insert_orders
from app.services.outbox import request_job
from app.services.stock import Actor, OpeningLine, set_opening_stock

BACKGROUND_ROWS = 5_000  # above this, the worker imports the file and the page shows its progress
BACKGROUND_STOCK_ROWS = 1_000  # a stock line costs a few round trips (its lock, its lot): ~1 ms each
# Each stock line holds an advisory lock until commit, and PostgreSQL's shared lock table holds about
# 6,400 by default (max_locks_per_transaction × max_connections): larger stock files must be split.
MAX_STOCK_ROWS = 5_000
PROGRESS_ROWS = 1_000  # rows read between two progress reports
WRITE_ROWS = 5_000  # rows per upsert: keeps each statement under PostgreSQL's parameter limit
JOB = "import_batch"

Progress = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Uploader:
    user_id: UUID | None
    username: str
    ip: str | None
    site_ids: frozenset[int] | None  # the sites they work on; None for every site


def import_kind(value: str) -> ImportKind:
    try:
        return ImportKind(value)
    except ValueError:
        raise Invalid("Choose what the file holds.", field="kind") from None


async def start_import(
    db: Database, kind: str, filename: str, content: bytes, *, uploader: Uploader, now: datetime
) -> int:
    """Store the file, then import it now or have the worker import it; returns the batch id."""
    chosen = import_kind(kind)
    estimate = await asyncio.to_thread(estimate_rows, content)  # refuses what is not a CSV or XLSX table
    sites = None if uploader.site_ids is None else sorted(uploader.site_ids)
    limit = BACKGROUND_STOCK_ROWS if chosen is ImportKind.STOCK else BACKGROUND_ROWS
    async with db.transaction() as session:
        batch_id = await _store(session, chosen, filename, content, estimate, uploader)
        if estimate is None or estimate > limit:
            await request_job(session, JOB, batch_id=batch_id, sites=sites)
        else:
            await process_batch(session, batch_id, sites=sites, now=now)
        return batch_id


async def _store(
    session: AsyncSession,
    kind: ImportKind,
    filename: str,
    content: bytes,
    estimate: int | None,
    uploader: Uploader,
) -> int:
    name = PurePath(filename.replace("\\", "/")).name[:255] or "?"
    batch = ImportBatch(
        kind=kind.value,
        filename=name,
        status="queued",
        total_rows=estimate,
        content=content,
        created_by=uploader.user_id,
    )
    session.add(batch)
    await session.flush()
    await journal.record(
        session,
        "import.requested",
        actor_id=uploader.user_id,
        actor_name=uploader.username,
        ip=uploader.ip,
        batch=batch.id,
        kind=kind.value,
        filename=name,
    )
    return batch.id


async def _quiet(**values: Any) -> None:
    return None


async def process_batch(
    session: AsyncSession,
    batch_id: int,
    *,
    sites: list[int] | None,
    now: datetime,
    progress: Progress = _quiet,
) -> dict[str, int]:
    """Check every row of a stored file; write it all in this transaction if it holds no error."""
    batch = await session.get(ImportBatch, batch_id)
    if batch is None or batch.finished_at is not None:
        return {"skipped": 1}
    kind, allowed = ImportKind(batch.kind), None if sites is None else frozenset(sites)
    await progress(status="running", processed_rows=0)
    try:
        reader = await _read(batch.content or b"", kind, progress)
    except Invalid as refusal:
        return await _finish(session, batch, rows=0, problems=[_whole_file(refusal)])
    found, ready = await _check(session, kind, reader, allowed, batch.created_by)
    rows = reader.rows_read
    if reader.error_count or found:
        problems = (reader.problems + found)[:MAX_ERRORS]
        errors = reader.error_count + len(found)
        return await _finish(session, batch, rows=rows, problems=problems, errors=errors)
    await progress(processed_rows=rows, total_rows=rows)
    try:
        async with session.begin_nested():  # a refusal while writing undoes every write of the file
            counts = await _write(session, kind, ready, batch, now)
    except Refused as refusal:
        return await _finish(session, batch, rows=rows, problems=[_whole_file(refusal)])
    return await _finish(session, batch, rows=rows, counts=counts)


async def _read(content: bytes, kind: ImportKind, progress: Progress) -> RowReader:
    """Read the file in slices off the event loop (openpyxl and csv are CPU-bound), reporting progress."""
    table = await asyncio.to_thread(open_table, content)
    try:
        reader = RowReader(kind, table.header)
        while await asyncio.to_thread(reader.read_many, table.rows, PROGRESS_ROWS):
            await progress(processed_rows=reader.rows_read)
    finally:
        table.close()
    if kind is ImportKind.STOCK and reader.rows_read > MAX_STOCK_ROWS:
        raise Invalid(
            "An opening stock file holds at most {limit} lines: split it by site or zone.",
            field="file",
            limit=MAX_STOCK_ROWS,
        )
    return reader


async def _check(
    session: AsyncSession,
    kind: ImportKind,
    reader: RowReader,
    allowed: frozenset[int] | None,
    created_by: UUID | None,
) -> tuple[list[Problem], Any]:
    """The checks that need the database, on the rows that passed their own; and what to write."""
    if kind is ImportKind.ORDERS:
        return await check_orders(session, reader.records, reader.headers, allowed, created_by)
    if kind is ImportKind.PRODUCTS:
        return await check_products(session, reader.records, reader.headers), reader.records
    if kind is ImportKind.LOCATIONS:
        return await check_locations(session, reader.records, reader.headers, allowed), reader.records
    return await check_stock(session, reader.records, reader.headers, allowed)


async def _write(
    session: AsyncSession, kind: ImportKind, ready: Any, batch: ImportBatch, now: datetime
) -> dict[str, int]:
    if kind is ImportKind.ORDERS:
        return await _write_orders(session, ready, now)
    if kind is ImportKind.STOCK:
        lines: list[OpeningLine] = ready
        actor = Actor(user_id=batch.created_by, scope="import")
        sites, movements = await site_ids_by_code(session), 0
        for part in slices(lines, WRITE_ROWS):
            movements += await set_opening_stock(
                session, sites, part, actor=actor, now=now, document=f"import-{batch.id}"
            )
        return {"rows": len(lines), "movements": movements, "unchanged": len(lines) - movements}
    total = UpsertCounts()
    for part in slices([record for _row, record in ready], WRITE_ROWS):
        if kind is ImportKind.PRODUCTS:
            counts = await upsert_products(session, [p for p in part if isinstance(p, ProductData)])
        else:
            counts = await upsert_locations(session, [loc for loc in part if isinstance(loc, LocationData)])
        total = UpsertCounts(
            total.created + counts.created, total.updated + counts.updated, total.unchanged + counts.unchanged
        )
    return {
        "rows": len(ready),
        "created": total.created,
        "updated": total.updated,
        "unchanged": total.unchanged,
    }


async def _write_orders(session: AsyncSession, ready: OrdersReady, now: datetime) -> dict[str, int]:
    """New orders in bulk; the file's orders already there (the same) are counted, not written again."""
    for part in slices(ready.orders, WRITE_ROWS // 10):  # ~10 lines an order: each statement stays small
        await insert_orders(session, part, now)
    return {"rows": ready.rows, "created": len(ready.orders), "updated": 0, "unchanged": ready.unchanged}


def _whole_file(refusal: Refused) -> Problem:
    return Problem(None, "", refusal.message, refusal.facts)


async def _finish(
    session: AsyncSession,
    batch: ImportBatch,
    *,
    rows: int,
    problems: list[Problem] | None = None,
    errors: int = 0,
    counts: dict[str, int] | None = None,
) -> dict[str, int]:
    """Record the outcome; the file's bytes are no longer needed."""
    problems = sorted(problems or [], key=lambda p: p.row or 0)
    if problems or counts is None:
        counts = {"rows": rows, "errors": max(errors, len(problems))}
    status = "failed" if problems else "done"
    await session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch.id)
        .values(
            status=status,
            total_rows=rows,
            processed_rows=rows,
            errors=[p.stored() for p in problems],
            counts=counts,
            content=None,
            finished_at=func.clock_timestamp(),  # when it really ended, not when the job started
        )
    )
    await journal.record(
        session, f"import.{status}", actor_id=batch.created_by, batch=batch.id, counts=counts
    )
    return counts


def reporter(session: AsyncSession, batch_id: int) -> Progress:
    """Progress written on its own connection: the import's transaction is invisible until it commits."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine)

    async def report(**values: Any) -> None:
        async with engine.begin() as connection:
            await connection.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(**values))

    return report


async def import_job(session: AsyncSession, kwargs: dict[str, Any]) -> dict[str, int]:
    """Job body: import a stored batch; an unexpected failure is shown on the page before it propagates."""
    report = reporter(session, kwargs["batch_id"])
    try:
        return await process_batch(
            session, kwargs["batch_id"], sites=kwargs.get("sites"), now=datetime.now(UTC), progress=report
        )
    except Exception:
        stopped = Problem(None, "", N_("The import stopped on an unexpected error; nothing was written."))
        await report(status="failed", errors=[stopped.stored()])
        raise
