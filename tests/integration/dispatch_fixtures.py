"""Demand for dispatch tests: destinations and released orders at LYS, stock booked through the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select, update

from app.db.models import Destination, DispatchOrder, DispatchOrderLine, Product
from app.domain.ledger import MovementKind
from app.services.stock import Actor, StockChange, record_stock_change

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ACTOR = Actor(user_id=None, scope="test")


@dataclass(frozen=True)
class Dest:
    code: str
    tier: int
    min_units: int | None = None
    max_units: int | None = None


async def make_destinations(db, *specs: Dest) -> dict[str, int]:
    async with db.transaction() as s:
        ids = await s.scalars(
            insert(Destination).returning(Destination.id),
            [
                {
                    "code": d.code,
                    "name": f"Magasin {d.code}",
                    "kind": "store",
                    "tier": d.tier,
                    "min_units": d.min_units,
                    "max_units": d.max_units,
                }
                for d in specs
            ],
        )
        return dict(zip([d.code for d in specs], ids.all(), strict=True))


_numbers = iter(range(1, 1_000_000))


async def make_order(
    db,
    site_id: int,
    destination_id: int,
    lines: list[tuple[str, int]],
    *,
    priority: int,
    state: str = "released",
    due: datetime | None = None,
) -> int:
    """An order of `lines` (SKU, units) straight into the tables (the order services are tested apart)."""
    async with db.transaction() as s:
        products = dict((await s.execute(select(Product.sku, Product.id))).all())
        order_id = await s.scalar(
            insert(DispatchOrder)
            .values(
                number=f"T-{next(_numbers):05d}",
                site_id=site_id,
                destination_id=destination_id,
                state=state,
                priority=priority,
                due_at=due or NOW + timedelta(hours=4),
                source="screen",
                units=sum(q for _, q in lines),
            )
            .returning(DispatchOrder.id)
        )
        await s.execute(
            insert(DispatchOrderLine),
            [
                {"order_id": order_id, "line_no": n, "product_id": products[sku], "quantity": q}
                for n, (sku, q) in enumerate(lines, start=1)
            ],
        )
        return order_id


async def receive(
    db, site_id: int, sku: str, quantity: int, location: str, *, lot=None, expiry: date | None = None
) -> None:
    """Stock into a storage location the way operators book it: a receipt, then a put-away."""
    for kind, source, target in (
        (MovementKind.RECEIPT, None, "QUAI-R1"),
        (MovementKind.PUTAWAY, "QUAI-R1", location),
    ):
        await record_stock_change(
            db,
            StockChange(kind, site_id, sku, quantity, source, target, lot, expiry),
            actor=ACTOR,
            idempotency_key=uuid.uuid4().hex,
            now=NOW,
        )


async def make_worked_example(
    db, site_id: int, *, stock=((72, "A-01-01"), (48, "A-01-02"))
) -> dict[str, int]:
    """PRODUCT.md's acceptance case: 120 units, packs of 6 (round-up allowed); A tier 1 needs 24; B 45, C 60,
    D 20 in tier 2 with a 1-pack minimum each. Returns the destination ids."""
    async with db.transaction() as s:
        await s.execute(update(Product).where(Product.sku == "SKU-WATER").values(round_up_packs=True))
    ids = await make_destinations(
        db, Dest("A", 1), Dest("B", 2, min_units=6), Dest("C", 2, min_units=6), Dest("D", 2, min_units=6)
    )
    for code, need in (("A", 24), ("B", 45), ("C", 60), ("D", 20)):
        await make_order(db, site_id, ids[code], [("SKU-WATER", need)], priority=1 if code == "A" else 2)
    for units, location in stock:
        await receive(db, site_id, "SKU-WATER", units, location)
    return ids
