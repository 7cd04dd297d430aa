"""Reads behind the destination screens and the API: never the encrypted address or contact."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Destination


@dataclass(frozen=True)
class DestinationRow:
    code: str
    name: str
    kind: str
    tier: int
    min_units: int | None
    max_units: int | None
    quota_percent: float | None
    is_active: bool


_COLUMNS = (
    Destination.code,
    Destination.name,
    Destination.kind,
    Destination.tier,
    Destination.min_units,
    Destination.max_units,
    Destination.quota_percent,
    Destination.is_active,
)


def _row(row: tuple[str, str, str, int, int | None, int | None, Decimal | None, bool]) -> DestinationRow:
    code, name, kind, tier, low, high, percent, active = row
    return DestinationRow(
        code, name, kind, tier, low, high, None if percent is None else float(percent), active
    )


async def destination_page(
    session: AsyncSession, q: str, limit: int, offset: int
) -> tuple[list[DestinationRow], int]:
    """Destinations by code; `q` matches part of the code or the name."""
    query = select(*_COLUMNS)
    if term := q.strip():
        query = query.where(
            or_(
                Destination.code.icontains(term, autoescape=True),
                Destination.name.icontains(term, autoescape=True),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(query.order_by(Destination.code).limit(limit).offset(offset))
    return [_row(tuple(row)) for row in rows], int(total or 0)  # type: ignore[arg-type]


async def destination_by_code(session: AsyncSession, code: str) -> DestinationRow | None:
    row = (await session.execute(select(*_COLUMNS).where(Destination.code == code.strip().upper()))).first()
    return None if row is None else _row(tuple(row))  # type: ignore[arg-type]


async def destination_choices(session: AsyncSession) -> list[DestinationRow]:
    """The destinations an order may go to (active ones), for the new-order form."""
    rows = await session.execute(select(*_COLUMNS).where(Destination.is_active).order_by(Destination.code))
    return [_row(tuple(row)) for row in rows]  # type: ignore[arg-type]
