"""Reads behind the scan-driven stock flows (receive, put away, move, count, adjust)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Location, Lot, Product, StockBalance, StockMovement
from app.db.queries.stock_views import SOURCE, TARGET


@dataclass(frozen=True)
class LotChoice:
    code: str
    expiry: date | None
    available: int


@dataclass(frozen=True)
class RecentRow:
    at: datetime
    kind: str
    sku: str
    lot: str | None
    quantity: int
    source: str | None
    target: str | None
    reason: str | None  # adjustments store "<reason code>: <note>"

    @property
    def location(self) -> str | None:
        return self.target or self.source

    @property
    def reason_code(self) -> str:
        return (self.reason or "").partition(":")[0]

    @property
    def reason_note(self) -> str:
        return (self.reason or "").partition(":")[2].strip()


async def lots_with_free_stock(
    session: AsyncSession, site_id: int, location_code: str, product_id: int, limit: int = 8
) -> list[LotChoice]:
    """Lots of a product with free stock at a location, soonest expiry first."""
    rows = await session.execute(
        select(Lot.code, Lot.expiry, StockBalance.on_hand - StockBalance.reserved)
        .join(Lot, Lot.id == StockBalance.lot_id)
        .join(Location, Location.id == StockBalance.location_id)
        .where(
            Location.site_id == site_id,
            Location.code == location_code,
            StockBalance.product_id == product_id,
            StockBalance.on_hand > StockBalance.reserved,
        )
        .order_by(Lot.expiry.asc().nulls_last(), Lot.code)
        .limit(limit)
    )
    return [LotChoice(lot, expiry, int(available)) for lot, expiry, available in rows]


async def free_stock(session: AsyncSession, site_id: int, location_code: str, product_id: int) -> int:
    """Units of a product (without lots) free at a location: on hand less reserved for picking."""
    free = await session.scalar(
        select(func.coalesce(func.sum(StockBalance.on_hand - StockBalance.reserved), 0))
        .join(Location, Location.id == StockBalance.location_id)
        .where(
            Location.site_id == site_id,
            Location.code == location_code,
            StockBalance.product_id == product_id,
            StockBalance.lot_id.is_(None),
        )
    )
    return int(free or 0)


async def recent_movements(
    session: AsyncSession,
    site_id: int,
    user_id: UUID,
    kinds: Collection[str],
    since: datetime,
    limit: int = 5,
) -> list[RecentRow]:
    """One person's latest movements of some kinds at a site, newest first."""
    site_locations = select(Location.id).where(Location.site_id == site_id)
    rows = await session.execute(
        select(
            StockMovement.occurred_at,
            StockMovement.kind,
            Product.sku,
            Lot.code,
            StockMovement.quantity,
            SOURCE.code,
            TARGET.code,
            StockMovement.reason,
        )
        .join(Product, Product.id == StockMovement.product_id)
        .outerjoin(Lot, Lot.id == StockMovement.lot_id)
        .outerjoin(SOURCE, SOURCE.id == StockMovement.from_location_id)
        .outerjoin(TARGET, TARGET.id == StockMovement.to_location_id)
        .where(
            StockMovement.actor_id == user_id,
            StockMovement.kind.in_(kinds),
            StockMovement.occurred_at >= since,
            # Through the location indexes: the movements of this site's locations in the window.
            or_(
                StockMovement.from_location_id.in_(site_locations),
                StockMovement.to_location_id.in_(site_locations),
            ),
        )
        .order_by(StockMovement.id.desc())
        .limit(limit)
    )
    return [RecentRow(*row) for row in rows]
