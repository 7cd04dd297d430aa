"""What a dispatch run reads: a site's open demand and its available stock, each in one statement.

Both run on the raw asyncpg connection (a run of 100,000 demand lines cannot afford ORM rows). The
stock statement can lock the balance rows it reads (FOR UPDATE, in key order, the order every stock
change locks in), so that a commit reserves exactly what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DemandRow:
    """One order line's unmet need, with what the allocation needs to know of its order and product."""

    line_id: int
    order_id: int
    order_number: str
    priority: int  # the order's tier (1 is served first)
    due_at: datetime
    line_no: int
    product_id: int
    sku: str
    pack_size: int
    round_up: bool
    allow_eaches: bool
    expiry_tracked: bool
    destination_id: int
    destination_code: str
    min_units: int | None
    max_units: int | None
    quota_percent: Any  # Decimal | None
    need: int


@dataclass(frozen=True, slots=True)
class StockRow:
    """Available stock of one balance at a storage location of the site."""

    product_id: int
    location_id: int
    location_code: str
    zone: str
    pick_seq: int
    lot_id: int | None
    lot_code: str | None
    expiry: date | None
    received_on: date
    available: int


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


async def open_demand(pg: Any, site_id: int, states: list[str]) -> list[DemandRow]:
    """Every order line of the site with need left, in orders open for allocation."""
    return [DemandRow(*row) for row in await pg.fetch(_DEMAND, site_id, states)]


async def available_stock(pg: Any, site_id: int, product_ids: list[int], *, lock: bool) -> list[StockRow]:
    """Unreserved stock of these products in the site's storage; `lock` holds the rows until commit."""
    statement = _STOCK + (" FOR UPDATE OF b" if lock else "")
    return [StockRow(*row) for row in await pg.fetch(statement, site_id, product_ids)]
