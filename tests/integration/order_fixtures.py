"""Orders for tests: destinations, the personas as actors, and stock reserved for an order's line."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import insert, text

from app.db.models import Destination
from app.db.session import driver
from app.domain.ledger import MovementKind
from app.services import stock
from app.services.dispatch_runs import hold_site_dispatch
from app.services.users import Actor

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Lyon
DESTINATIONS = [  # code, name, kind, tier, active
    ("MAG-001", "Magasin Lyon Part-Dieu", "store", 1, True),
    ("MAG-002", "Magasin Villeurbanne", "store", 2, True),
    ("CLI-001", "Traiteur Bocuse", "customer", 3, True),
    ("AGE-009", "Agence fermée", "branch", 2, False),
]


async def make_destinations(db) -> dict[str, int]:
    async with db.transaction() as s:
        ids = await s.scalars(
            insert(Destination).returning(Destination.id),
            [
                {"code": code, "name": name, "kind": kind, "tier": tier, "is_active": active}
                for code, name, kind, tier, active in DESTINATIONS
            ],
        )
        return dict(zip([d[0] for d in DESTINATIONS], ids.all(), strict=True))


async def actor(db, username: str = "samir") -> Actor:
    async with db.sessions() as s:
        user_id = await s.scalar(text("SELECT id FROM users WHERE username = :u"), {"u": username})
    return Actor(user_id, username, "192.0.2.7")


async def put_in_stock(db, site_id: int, sku: str, quantity: int, location: str = "A-01-01") -> None:
    await stock.record_stock_change(
        db,
        stock.StockChange(MovementKind.RECEIPT, site_id, sku, quantity, None, location),
        actor=stock.Actor(None, "test"),
        idempotency_key=uuid.uuid4().hex,
        now=NOW,
    )


async def reserve_line(
    db,
    order_id: int,
    line_no: int,
    quantity: int,
    location: str = "A-01-01",
    *,
    taken_by: str | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """What a dispatch run leaves behind: an open pick task on a list, its stock reserved, the line allocated.

    Written straight into the tables, so that these tests do not depend on the run's own code; under the
    site's dispatch lock, taken first as a run takes it. `before_commit` is awaited with everything written.
    """
    async with db.transaction() as s:
        pg = await driver(s)
        await hold_site_dispatch(
            s, await pg.fetchval("SELECT site_id FROM dispatch_orders WHERE id = $1", order_id)
        )
        line = await pg.fetchrow(
            """SELECT l.id, l.product_id, o.site_id FROM dispatch_order_lines l
               JOIN dispatch_orders o ON o.id = l.order_id WHERE l.order_id = $1 AND l.line_no = $2""",
            order_id,
            line_no,
        )
        loc = await pg.fetchrow(
            "SELECT id, pick_seq FROM locations WHERE site_id = $1 AND code = $2", line["site_id"], location
        )
        run = await pg.fetchval(
            """INSERT INTO dispatch_runs (site_id, policy, rounding, spill, status, phase, progress_done,
                   progress_total, summary, created_at, updated_at)
               VALUES ($1, 'proportional', 'largest_remainder', false, 'committed', 'done', 0, 0, '{}',
                       $2, $2)
               RETURNING id""",
            line["site_id"],
            NOW,
        )
        taker = await pg.fetchval("SELECT id FROM users WHERE username = $1", taken_by) if taken_by else None
        pick_list = await pg.fetchval(
            """INSERT INTO pick_lists (number, site_id, run_id, zone, status, taken_by, created_at,
                                       updated_at)
               VALUES ($1, $2, $3, 'A', $4, $5, $6, $6) RETURNING id""",
            f"PL-{uuid.uuid4().hex[:8]}",
            line["site_id"],
            run,
            "taken" if taker else "open",
            taker,
            NOW,
        )
        task = await pg.fetchval(
            """INSERT INTO pick_tasks (run_id, pick_list_id, order_line_id, product_id, location_id, pick_seq,
                   quantity, picked, short, status)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 'open') RETURNING id""",
            run,
            pick_list,
            line["id"],
            line["product_id"],
            loc["id"],
            loc["pick_seq"],
            quantity,
        )
        await pg.execute(
            "UPDATE stock_balances SET reserved = reserved + $3 WHERE product_id = $1 AND location_id = $2",
            line["product_id"],
            loc["id"],
            quantity,
        )
        await pg.execute(
            "UPDATE dispatch_order_lines SET allocated = allocated + $2 WHERE id = $1", line["id"], quantity
        )
        await pg.execute(
            "UPDATE dispatch_orders SET state = $2 WHERE id = $1",
            order_id,
            "picking" if taker else "allocated",
        )
        if before_commit is not None:
            await before_commit()
        return int(task)


async def mark_picked(db, order_id: int, line_no: int, units: int) -> None:
    """Units of a line already at the dispatch dock (the figures only: enough for the state rules)."""
    async with db.transaction() as s:
        await s.execute(
            text("UPDATE dispatch_order_lines SET picked = :n WHERE order_id = :o AND line_no = :l"),
            {"n": units, "o": order_id, "l": line_no},
        )
        await s.execute(text("UPDATE dispatch_orders SET state = 'picked' WHERE id = :o"), {"o": order_id})
