"""Reads behind the home pages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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


_PIPELINE = text("""
    SELECT s.id, s.code, s.name,
           (SELECT count(*) FROM locations l WHERE l.site_id = s.id) AS locations,
           o.state, count(o.id) AS orders, coalesce(sum(o.units), 0) AS units
    FROM sites s
    LEFT JOIN dispatch_orders o ON o.site_id = s.id
    WHERE CAST(:every_site AS boolean) OR s.id = ANY(CAST(:site_ids AS bigint[]))
    GROUP BY s.id, s.code, s.name, o.state
    ORDER BY s.code
""")


async def order_pipeline(session: AsyncSession, site_ids: Collection[int] | None) -> list[SitePipeline]:
    """One row per site in `site_ids` (None: every site), with order counts and units per state.

    One statement (the home page polls it): per-site, per-state aggregates in a single pass.
    """
    rows = await session.execute(
        _PIPELINE, {"every_site": site_ids is None, "site_ids": list(site_ids or [])}
    )
    sites: dict[int, SitePipeline] = {}
    for site_id, code, name, locations, state, orders, units in rows:
        site = sites.setdefault(
            site_id,
            SitePipeline(
                site_id,
                code,
                name,
                int(locations),
                dict.fromkeys(ORDER_STATES, 0),
                dict.fromkeys(ORDER_STATES, 0),
            ),
        )
        if state is not None:
            site.orders[state], site.units[state] = int(orders), int(units)
    return list(sites.values())
