"""Reads behind the import screens: one batch with its outcome, its errors, and the latest batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ImportBatch, User

FINISHED = ("done", "failed")


@dataclass(frozen=True)
class BatchView:
    id: int
    kind: str
    filename: str
    status: str
    total_rows: int | None
    processed_rows: int
    counts: dict[str, int]
    created_at: datetime
    finished_at: datetime | None
    created_by: str | None
    errors: list[dict[str, Any]]  # the first ones only

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def error_count(self) -> int:
        return self.counts.get("errors", len(self.errors))


_COLUMNS = (
    ImportBatch.id,
    ImportBatch.kind,
    ImportBatch.filename,
    ImportBatch.status,
    ImportBatch.total_rows,
    ImportBatch.processed_rows,
    ImportBatch.counts,
    ImportBatch.created_at,
    ImportBatch.finished_at,
    User.full_name,
)


async def batch_view(session: AsyncSession, batch_id: int, first_errors: int = 100) -> BatchView | None:
    """A batch as its page shows it (never its file), with its first errors."""
    row = (
        await session.execute(
            select(*_COLUMNS, ImportBatch.errors)
            .outerjoin(User, User.id == ImportBatch.created_by)
            .where(ImportBatch.id == batch_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return _view(row, list(row.errors or [])[:first_errors])


async def batch_errors(session: AsyncSession, batch_id: int) -> list[dict[str, Any]] | None:
    """Every recorded error of a batch, for the downloadable report."""
    errors = await session.scalar(select(ImportBatch.errors).where(ImportBatch.id == batch_id))
    return None if errors is None else list(errors)


async def recent_batches(session: AsyncSession, limit: int = 10) -> list[BatchView]:
    rows = await session.execute(
        select(*_COLUMNS)
        .outerjoin(User, User.id == ImportBatch.created_by)
        .order_by(ImportBatch.id.desc())
        .limit(limit)
    )
    return [_view(row, []) for row in rows]


def _view(row: Any, errors: list[dict[str, Any]]) -> BatchView:
    return BatchView(
        id=row.id,
        kind=row.kind,
        filename=row.filename,
        status=row.status,
        total_rows=row.total_rows,
        processed_rows=row.processed_rows,
        counts=row.counts or {},
        created_at=row.created_at,
        finished_at=row.finished_at,
        created_by=row.full_name,
        errors=errors,
    )
