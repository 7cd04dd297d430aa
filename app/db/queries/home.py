"""Reads behind the home pages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import DispatchOrder, DispatchOrderLine, Location, Site
from app.db.models.orders import ORDER_STATES


@dataclass(frozen=True)
class SitePipeline:
    """Orders of one site by state: how many, how many lines, how many units."""

    site_id: int
    code: str
    name: str
    locations: int
    orders: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)

    @property
    def open_orders(self) -> int:
        return sum(n for state, n in self.orders.items() if state not in {"dispatched", "cancelled"})


async def order_pipeline(session: AsyncSession, site_ids: Collection[int] | None) -> list[SitePipeline]:
    """One row per site in `site_ids` (None: every site), with order counts and units per state."""
    site_query = select(
        Site.id,
        Site.code,
        Site.name,
        select(func.count()).where(Location.site_id == Site.id).scalar_subquery(),
    )
    if site_ids is not None:
        site_query = site_query.where(Site.id.in_(site_ids))
    sites = (await session.execute(site_query.order_by(Site.code))).all()
    if not sites:
        return []
    units = (
        select(DispatchOrderLine.order_id, func.sum(DispatchOrderLine.quantity).label("units"))
        .group_by(DispatchOrderLine.order_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                DispatchOrder.site_id,
                DispatchOrder.state,
                func.count(),
                func.coalesce(func.sum(units.c.units), 0),
            )
            .outerjoin(units, units.c.order_id == DispatchOrder.id)
            .where(DispatchOrder.site_id.in_([site.id for site in sites]))
            .group_by(DispatchOrder.site_id, DispatchOrder.state)
        )
    ).all()
    result = []
    for site_id, code, name, locations in sites:
        orders = dict.fromkeys(ORDER_STATES, 0)
        qty = dict.fromkeys(ORDER_STATES, 0)
        for row_site, state, count, total in rows:
            if row_site == site_id:
                orders[state], qty[state] = int(count), int(total)
        result.append(SitePipeline(site_id, code, name, int(locations), orders, qty))
    return result
