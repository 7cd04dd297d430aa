"""Reads behind the shipment screens, the delivery note and the labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Destination


@dataclass(frozen=True)
class ReadyLine:
    """An order line's picked units waiting at the dock: what the dock checks before closing."""

    order: str
    line_no: int
    sku: str
    product: str
    pack_size: int
    units: int


@dataclass(frozen=True)
class ReadyRow:
    """A destination with picked stock waiting at the dock."""

    destination_id: int
    code: str
    name: str
    orders: int
    units: int  # picked, ready to leave
    still_reserved: int  # reserved for it and not picked yet (its orders stay open after this shipment)
    packs: int = 0  # whole packs among the units picked: what the parcels' count is checked against
    lines: tuple[ReadyLine, ...] = ()  # the first READY_LINES, by order and line
    line_count: int = 0  # all of them

    @property
    def lines_not_shown(self) -> int:
        return self.line_count - len(self.lines)


READY_LINES = 50  # per destination on the screen; the delivery note lists them all


_READY = """
    SELECT d.id, d.code, d.name, count(DISTINCT o.id), sum(l.picked), sum(l.allocated),
           sum(l.picked / p.pack_size), count(*) FILTER (WHERE l.picked > 0)
    FROM dispatch_orders o
    JOIN dispatch_order_lines l ON l.order_id = o.id
    JOIN products p ON p.id = l.product_id
    JOIN destinations d ON d.id = o.destination_id
    WHERE o.site_id = :site AND o.state NOT IN ('draft', 'dispatched', 'cancelled')
    GROUP BY d.id, d.code, d.name
    HAVING sum(l.picked) > 0
    ORDER BY d.code
"""


_READY_LINES = """
    SELECT destination_id, number, line_no, sku, name, pack_size, picked FROM (
        SELECT o.destination_id, o.number, l.line_no, p.sku, p.name, p.pack_size, l.picked,
               row_number() OVER (PARTITION BY o.destination_id ORDER BY o.number, l.line_no) AS n
        FROM dispatch_orders o
        JOIN dispatch_order_lines l ON l.order_id = o.id
        JOIN products p ON p.id = l.product_id
        WHERE o.site_id = :site AND o.state NOT IN ('draft', 'dispatched', 'cancelled') AND l.picked > 0
    ) ready WHERE n <= :per_destination
    ORDER BY destination_id, number, line_no
"""


async def ready_to_ship(session: AsyncSession, site_id: int) -> list[ReadyRow]:
    """Destinations of a site whose orders have picked units at the dispatch dock, with those lines."""
    lines: dict[int, list[ReadyLine]] = {}
    found = await session.execute(text(_READY_LINES), {"site": site_id, "per_destination": READY_LINES})
    for destination_id, number, line_no, sku, name, pack_size, picked in found:
        lines.setdefault(destination_id, []).append(ReadyLine(number, line_no, sku, name, pack_size, picked))
    rows = await session.execute(text(_READY), {"site": site_id})
    return [
        ReadyRow(
            i, code, name, int(n), int(units), int(rest), int(packs), tuple(lines.get(i, ())), int(count)
        )
        for i, code, name, n, units, rest, packs, count in rows
    ]


@dataclass(frozen=True)
class ShipmentRow:
    id: int
    number: str
    site_id: int
    destination_id: int
    destination: str  # code
    destination_name: str
    parcels: int
    units: int
    created_at: datetime
    created_by: str | None  # full name


_SHIPMENTS = """
    SELECT sh.id, sh.number, sh.site_id, d.id, d.code, d.name, sh.parcels, sh.units, sh.created_at,
           u.full_name
    FROM shipments sh
    JOIN destinations d ON d.id = sh.destination_id
    LEFT JOIN users u ON u.id = sh.created_by
    WHERE sh.site_id = :site AND (CAST(:id AS bigint) IS NULL OR sh.id = :id)
    ORDER BY sh.created_at DESC, sh.id DESC
    LIMIT :limit
"""


async def recent_shipments(session: AsyncSession, site_id: int, limit: int = 20) -> list[ShipmentRow]:
    """A site's latest shipments, newest first."""
    rows = await session.execute(text(_SHIPMENTS), {"site": site_id, "id": None, "limit": limit})
    return [ShipmentRow(*row) for row in rows]


@dataclass(frozen=True)
class NoteLine:
    order: str
    line_no: int
    sku: str
    product: str
    unit: str
    lot: str | None
    expiry: date | None
    ordered: int
    quantity: int  # in this shipment


@dataclass(frozen=True)
class ShipmentDetail:
    shipment: ShipmentRow
    site_code: str
    site_name: str
    address: str | None  # decrypted: printed on the delivery note for the driver and the store
    contact: str | None
    lines: list[NoteLine]

    @property
    def address_lines(self) -> list[str]:
        return [line for line in (self.address or "").splitlines() if line.strip()]


_NOTE_LINES = """
    SELECT o.number, l.line_no, p.sku, p.name, p.unit, lot.code, lot.expiry, l.quantity, sl.quantity
    FROM shipment_lines sl
    JOIN dispatch_order_lines l ON l.id = sl.order_line_id
    JOIN dispatch_orders o ON o.id = l.order_id
    JOIN products p ON p.id = sl.product_id
    LEFT JOIN lots lot ON lot.id = sl.lot_id
    WHERE sl.shipment_id = :id
    ORDER BY o.number, l.line_no, lot.expiry NULLS LAST, lot.code
"""


async def shipment_detail(session: AsyncSession, site_id: int, shipment_id: int) -> ShipmentDetail | None:
    """One shipment of a site with its lines and its destination's address, or None."""
    rows = await session.execute(text(_SHIPMENTS), {"site": site_id, "id": shipment_id, "limit": 1})
    found = rows.first()
    if found is None:
        return None
    shipment = ShipmentRow(*found)
    # Through the ORM: the address and contact columns decrypt on load (app/db/crypto.py).
    destination = (
        await session.execute(
            select(Destination.address, Destination.contact).where(Destination.id == shipment.destination_id)
        )
    ).one()
    site = (await session.execute(text("SELECT code, name FROM sites WHERE id = :s"), {"s": site_id})).one()
    lines = [NoteLine(*row) for row in await session.execute(text(_NOTE_LINES), {"id": shipment_id})]
    return ShipmentDetail(shipment, site[0], site[1], destination.address, destination.contact, lines)
