"""What a dispatch run reads: a site's open demand and its available stock, each in one statement.

Both run on the raw asyncpg connection (a run of 100,000 demand lines cannot afford ORM rows). The
stock statement can lock the balance rows it reads (FOR UPDATE, in key order, the order every stock
change locks in), so that a commit reserves exactly what it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

from app.domain.allocation.plan import DestinationTerms, OpenLine, ProductTerms, StockAt

_T = TypeVar("_T")


@dataclass(frozen=True)
class OpenDemand:
    """The site's open lines, and the terms of the products and destinations they name."""

    lines: list[OpenLine]
    products: dict[int, ProductTerms]
    destinations: dict[int, DestinationTerms]

    # The plan names products by SKU and destinations by code; what a run stores and shows names ids.
    @cached_property
    def product_id_by_sku(self) -> dict[str, int]:
        return {terms.sku: terms.product_id for terms in self.products.values()}

    @cached_property
    def destination_id_by_code(self) -> dict[str, int]:
        return {terms.code: terms.destination_id for terms in self.destinations.values()}


_DEMAND = """
    SELECT l.id, o.id, o.number, o.priority, o.due_at, l.line_no, l.product_id, o.destination_id,
           l.quantity - l.allocated - l.picked - l.shipped AS need
    FROM dispatch_orders o
    JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.site_id = $1 AND o.state = ANY($2::text[])
      AND l.quantity - l.allocated - l.picked - l.shipped > 0
      AND ($3::timestamptz IS NULL OR o.due_at <= $3)
    ORDER BY l.id
"""
# The terms of the products and destinations those lines name: a few thousand rows, not one per line.
_PRODUCTS = """
    SELECT id, sku, pack_size, round_up_packs, allow_eaches, expiry_tracked, holdback_units
    FROM products WHERE id = ANY($1::bigint[])
"""
_DESTINATIONS = """
    SELECT id, code, min_units, max_units, quota_percent FROM destinations WHERE id = ANY($1::bigint[])
"""

# Stock a run may hand out: storage locations in use, unreserved units. Lots rotate by their receipt
# (the lot's creation); lot-less stock has no receipt date to rotate by (a balance's last change is not
# one), so all of it is one class and the line's location preference decides.
_STOCK = """
    SELECT b.product_id, b.location_id, loc.code, loc.zone, loc.pick_seq,
           b.lot_id, lot.code, lot.expiry, coalesce(lot.created_at::date, DATE '2000-01-01'),
           b.on_hand - b.reserved
    FROM stock_balances b
    JOIN locations loc ON loc.id = b.location_id
    LEFT JOIN lots lot ON lot.id = b.lot_id
    WHERE loc.site_id = $1 AND loc.kind = 'storage' AND loc.is_active
      AND b.product_id = ANY($2::bigint[]) AND b.on_hand > b.reserved
    ORDER BY b.product_id, b.location_id, coalesce(b.lot_id, 0)
"""


async def open_demand(pg: Any, site_id: int, states: list[str], due_by: datetime | None) -> OpenDemand:
    """Every order line of the site with need left, in orders open for allocation (and due by `due_by`,
    when a run is cut off there).

    A large site has 100,000 of them: they are built in a thread, off the event loop (see
    app/services/dispatch_runs.py), like the stock below.
    """
    lines = await asyncio.to_thread(_build, OpenLine, await pg.fetch(_DEMAND, site_id, states, due_by))
    product_ids = sorted({line.product_id for line in lines})
    destination_ids = sorted({line.destination_id for line in lines})
    products = {row[0]: ProductTerms(*row) for row in await pg.fetch(_PRODUCTS, product_ids)}
    destinations = {row[0]: DestinationTerms(*row) for row in await pg.fetch(_DESTINATIONS, destination_ids)}
    return OpenDemand(lines, products, destinations)


async def available_stock(pg: Any, site_id: int, product_ids: list[int], *, lock: bool) -> list[StockAt]:
    """Unreserved stock of these products in the site's storage; `lock` holds the rows until commit."""
    statement = _STOCK + (" FOR UPDATE OF b" if lock else "")
    return await asyncio.to_thread(_build, StockAt, await pg.fetch(statement, site_id, product_ids))


def _build(kind: Callable[..., _T], rows: list[Any]) -> list[_T]:
    return [kind(*row) for row in rows]


async def count_open_lines(pg: Any, site_id: int, states: list[str], due_by: datetime | None) -> int:
    """How many lines a run of the site would consider (decides between running now and on the worker)."""
    return int(await pg.fetchval(_COUNT, site_id, states, due_by))


_COUNT = """
    SELECT count(*) FROM dispatch_orders o JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.site_id = $1 AND o.state = ANY($2::text[]) AND l.quantity - l.allocated - l.picked - l.shipped > 0
      AND ($3::timestamptz IS NULL OR o.due_at <= $3)
"""
