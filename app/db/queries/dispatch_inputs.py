"""What a dispatch run reads: a site's open demand and its available stock, each in one statement.

Both run on the raw asyncpg connection (a run of 100,000 demand lines cannot afford ORM rows). The
stock statement can lock the balance rows it reads (FOR UPDATE, in key order, the order every stock
change locks in), so that a commit reserves exactly what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain.allocation.plan import DestinationTerms, OpenLine, ProductTerms, StockAt


@dataclass(frozen=True)
class OpenDemand:
    """The site's open lines, and the terms of the products and destinations they name."""

    lines: list[OpenLine]
    products: dict[int, ProductTerms]
    destinations: dict[int, DestinationTerms]


_DEMAND = """
    SELECT l.id, o.id, o.number, o.priority, o.due_at, l.line_no,
           p.id, p.sku, p.pack_size, p.round_up_packs, p.allow_eaches, p.expiry_tracked,
           d.id, d.code, d.min_units, d.max_units, d.quota_percent,
           l.quantity - l.allocated - l.picked - l.shipped AS need
    FROM dispatch_orders o
    JOIN dispatch_order_lines l ON l.order_id = o.id
    JOIN products p ON p.id = l.product_id
    JOIN destinations d ON d.id = o.destination_id
    WHERE o.site_id = $1 AND o.state = ANY($2::text[])
      AND l.quantity - l.allocated - l.picked - l.shipped > 0
    ORDER BY l.id
"""

# Stock a run may hand out: storage locations in use, unreserved units. Lot-less stock is first in by
# the oldest receipt into that balance (approximated by the lot's or balance's creation date).
_STOCK = """
    SELECT b.product_id, b.location_id, loc.code, loc.zone, loc.pick_seq,
           b.lot_id, lot.code, lot.expiry, coalesce(lot.created_at, b.updated_at)::date,
           b.on_hand - b.reserved
    FROM stock_balances b
    JOIN locations loc ON loc.id = b.location_id
    LEFT JOIN lots lot ON lot.id = b.lot_id
    WHERE loc.site_id = $1 AND loc.kind = 'storage' AND loc.is_active
      AND b.product_id = ANY($2::bigint[]) AND b.on_hand > b.reserved
    ORDER BY b.product_id, b.location_id, coalesce(b.lot_id, 0)
"""


async def open_demand(pg: Any, site_id: int, states: list[str]) -> OpenDemand:
    """Every order line of the site with need left, in orders open for allocation."""
    lines: list[OpenLine] = []
    products: dict[int, ProductTerms] = {}
    destinations: dict[int, DestinationTerms] = {}
    for row in await pg.fetch(_DEMAND, site_id, states):
        product_id, destination_id = row[6], row[12]
        lines.append(
            OpenLine(row[0], row[1], row[2], row[3], row[4], row[5], product_id, destination_id, row[17])
        )
        if product_id not in products:
            products[product_id] = ProductTerms(product_id, row[7], row[8], row[9], row[10], row[11])
        if destination_id not in destinations:
            destinations[destination_id] = DestinationTerms(
                destination_id, row[13], row[14], row[15], row[16]
            )
    return OpenDemand(lines, products, destinations)


async def available_stock(pg: Any, site_id: int, product_ids: list[int], *, lock: bool) -> list[StockAt]:
    """Unreserved stock of these products in the site's storage; `lock` holds the rows until commit."""
    statement = _STOCK + (" FOR UPDATE OF b" if lock else "")
    return [StockAt(*row) for row in await pg.fetch(statement, site_id, product_ids)]


async def count_open_lines(pg: Any, site_id: int, states: list[str]) -> int:
    """How many lines a run of the site would consider (decides between running now and on the worker)."""
    return int(await pg.fetchval(_COUNT, site_id, states))


_COUNT = """
    SELECT count(*) FROM dispatch_orders o JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.site_id = $1 AND o.state = ANY($2::text[]) AND l.quantity - l.allocated - l.picked - l.shipped > 0
"""
