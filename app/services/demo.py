"""Loading the demo data into an empty database, in one transaction and a few seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import (
    Destination,
    DispatchOrder,
    DispatchOrderLine,
    Location,
    Product,
    ProductBarcode,
    Site,
    User,
    user_sites,
)
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.services.demo_data import DEMO_ACCOUNTS, PARIS, DemoData, generate_demo
from app.services.demo_stock import opening_stock
from app.services.dispatch_runs import RunOptions, start_dispatch_run
from app.services.errors import Refused
from app.services.passwords import hash_password
from app.services.picking import PickConfirmation, confirm_pick
from app.services.shipments import ShipmentRequest, close_shipment
from app.services.stock import Actor, set_opening_stock
from app.settings import DatabaseSettings

__all__ = ["DEMO_ACCOUNTS", "demo_loaded", "load_demo"]


def _database(urls: DatabaseUrls) -> Database:
    return Database(sqlalchemy_config(urls, DatabaseSettings(), application_name="dispatch-demo"))


async def demo_loaded(urls: DatabaseUrls) -> bool:
    """Whether the database already holds a site (demo or real): demo data only goes into an empty one."""
    db = _database(urls)
    try:
        async with db.transaction() as session:
            return await session.scalar(select(Site.id).limit(1)) is not None
    finally:
        await db.dispose()


async def load_demo(urls: DatabaseUrls, *, seed: int, today: date | None = None) -> dict[str, int]:
    """Generate the demo data for `today` (default: today in Paris) and insert it; returns counts per kind."""
    data_day = today or datetime.now(PARIS).date()
    data = generate_demo(seed, data_day)
    # Argon2 costs ~150 ms a hash; the four run in threads side by side, outside the transaction.
    hashes = await asyncio.gather(*(hash_password(user.password) for user in data.users))
    db = _database(urls)
    try:
        async with db.transaction() as session:
            # Serialises concurrent loaders: the second waits, then sees the sites and refuses.
            await session.execute(text("LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE"))
            if await session.scalar(select(Site.id).limit(1)) is not None:
                raise Refused("Demo data is already loaded.")
            counts = await _insert_all(session, data, hashes)
            sites = dict((await session.execute(select(Site.code, Site.id))).all())
            counts["stock_movements"] = await set_opening_stock(
                session,
                sites,
                opening_stock(data, seed, data_day),
                actor=Actor(None, "demo"),
                now=datetime.now(PARIS),
                document="DEMO",
            )
        # Lyon's day began a few hours ago: its run, then Paul's picking and a first shipment (the boards
        # show work in progress at once). The run comes first, so "a few hours ago" is when it happened.
        now = datetime.now(UTC)
        counts.update(await _first_run(db, sites[DEMO_RUN_SITE], now - DEMO_MORNING))
        counts.update(await _morning_of_picking(db, sites[DEMO_RUN_SITE], now - DEMO_MORNING, now))
        return counts
    finally:
        await db.dispose()


DEMO_RUN_SITE = "LYS"  # Lille is left for a supervisor to preview and commit a run


async def _first_run(db: Database, site_id: int, at: datetime) -> dict[str, int]:
    """One committed dispatch run at Lyon: its operators find pick lists waiting, its board shows work."""
    _status, answer = await start_dispatch_run(
        db,
        site_id,
        RunOptions(),
        expected_inputs=None,
        actor=Actor(None, "demo"),
        idempotency_key="demo-first-run",
        now=at,
        inline_max_lines=10**9,  # the demo loads without a worker
        pick_list_max_tasks=40,
    )
    return {"dispatch_runs": 1, "pick_tasks": answer["summary"]["tasks"]}


DEMO_MORNING = timedelta(hours=2, minutes=30)
DEMO_PICKER = "paul"
DEMO_LISTS_DONE = 2  # Paul has finished two lists, and is half-way through a third
_TASKS = text("""
    SELECT t.id, t.pick_list_id, l.code, p.sku, lot.code, t.quantity
    FROM pick_tasks t
    JOIN pick_lists pl ON pl.id = t.pick_list_id
    JOIN locations l ON l.id = t.location_id
    JOIN products p ON p.id = t.product_id
    LEFT JOIN lots lot ON lot.id = t.lot_id
    WHERE pl.id IN (SELECT id FROM pick_lists WHERE site_id = :site ORDER BY number LIMIT :lists)
    ORDER BY pl.number, t.pick_seq, t.id
""")


async def _morning_of_picking(db: Database, site_id: int, since: datetime, now: datetime) -> dict[str, int]:
    """Paul picks Lyon's first lists through the same services as a tablet, at times spread since the run.

    The last list is left half done in his hands (the boards show who picks what, since when); the goods
    of the destination he served first leave in a shipment.
    """
    async with db.reads() as session:
        paul_id = await session.scalar(select(User.id).where(User.username == DEMO_PICKER))
        tasks = (await session.execute(_TASKS, {"site": site_id, "lists": DEMO_LISTS_DONE + 1})).all()
    if not tasks:
        return {"picks": 0, "shipments": 0}
    paul = Actor(paul_id, str(paul_id))
    last_list = tasks[-1][1]
    todo = [t for t in tasks if t[1] != last_list] + [t for t in tasks if t[1] == last_list][:2]
    step = (now - since) * 0.8 / len(todo)
    picked = 0
    for n, (task_id, _list_id, location, sku, lot, quantity) in enumerate(todo, start=1):
        confirmation = PickConfirmation(location=location, product=sku, lot=lot, quantity=quantity)
        await confirm_pick(
            db,
            task_id,
            confirmation,
            site_ids=None,
            actor=paul,
            idempotency_key=f"demo-pick-{task_id}",
            now=since + step * n,
        )
        picked += 1
    async with db.reads() as session:
        served = await session.scalar(
            text("""SELECT d.code FROM dispatch_order_lines l
                    JOIN dispatch_orders o ON o.id = l.order_id JOIN destinations d ON d.id = o.destination_id
                    WHERE o.site_id = :site AND l.picked > 0 ORDER BY d.code LIMIT 1"""),
            {"site": site_id},
        )
    await close_shipment(
        db,
        ShipmentRequest(site_id, served, parcels=2),
        actor=paul,
        idempotency_key="demo-first-shipment",
        now=since + (now - since) * 0.85,
    )
    return {"picks": picked, "shipments": 1}


async def _insert_all(session: AsyncSession, data: DemoData, hashes: Sequence[str]) -> dict[str, int]:
    """Every row of the demo, parents first, looking up the generated ids by natural key."""
    loaded_at = datetime.now(UTC)
    site_ids = await _insert(
        session, Site, "code", [{"code": s.code, "name": s.name, "timezone": s.timezone} for s in data.sites]
    )
    location_ids = await _insert(
        session,
        Location,
        "barcode",
        [
            {
                "site_id": site_ids[loc.site_code],
                "code": loc.code,
                "barcode": loc.barcode,
                "kind": loc.kind,
                "zone": loc.zone,
                "pick_seq": loc.pick_seq,
            }
            for loc in data.locations
        ],
    )
    product_ids = await _insert(
        session,
        Product,
        "sku",
        [
            {
                "sku": p.sku,
                "name": p.name,
                "unit": p.unit,
                "pack_size": p.pack_size,
                "lot_tracked": p.lot_tracked,
                "expiry_tracked": p.expiry_tracked,
                "round_up_packs": p.round_up_packs,
            }
            for p in data.products
        ],
    )
    barcodes = await _insert(
        session,
        ProductBarcode,
        "code",
        [
            {"product_id": product_ids[p.sku], "code": b.code, "kind": b.kind, "units": b.units}
            for p in data.products
            for b in p.barcodes
        ],
    )
    destination_ids = await _insert(
        session,
        Destination,
        "code",
        [
            {
                "code": d.code,
                "name": d.name,
                "kind": d.kind,
                "tier": d.tier,
                "min_units": d.min_units,
                "max_units": d.max_units,
            }
            for d in data.destinations
        ],
    )
    order_ids = await _insert(
        session,
        DispatchOrder,
        "number",
        [
            {
                "number": o.number,
                "site_id": site_ids[o.site_code],
                "destination_id": destination_ids[o.destination_code],
                "state": o.state,
                "priority": o.priority,
                "due_at": o.due_at,
                "source": o.source,
                "units": sum(line.quantity for line in o.lines),
                "released_at": loaded_at if o.state == "released" else None,
            }
            for o in data.orders
        ],
    )
    lines = await _insert(
        session,
        DispatchOrderLine,
        "id",
        [
            {
                "order_id": order_ids[o.number],
                "line_no": line.line_no,
                "product_id": product_ids[line.sku],
                "quantity": line.quantity,
            }
            for o in data.orders
            for line in o.lines
        ],
    )
    users = await _insert_users(session, data, hashes, site_ids)
    return {
        "sites": len(site_ids),
        "locations": len(location_ids),
        "products": len(product_ids),
        "barcodes": len(barcodes),
        "destinations": len(destination_ids),
        "orders": len(order_ids),
        "lines": len(lines),
        "users": users,
    }


async def _insert_users(
    session: AsyncSession, data: DemoData, hashes: Sequence[str], site_ids: dict[str, int]
) -> int:
    """The demo accounts with their hashed passwords and their sites."""
    now = datetime.now(UTC)
    user_ids = await _insert(
        session,
        User,
        "username",
        [
            {
                "username": u.username,
                "full_name": u.full_name,
                "role": u.role,
                "password_hash": password_hash,
                "password_changed_at": now,
            }
            for u, password_hash in zip(data.users, hashes, strict=True)
        ],
    )
    memberships = [
        {"user_id": user_ids[u.username], "site_id": site_ids[code]}
        for u in data.users
        for code in u.site_codes
    ]
    if memberships:
        await session.execute(insert(user_sites), memberships)
    return len(user_ids)


async def _insert(session: AsyncSession, model: Any, key: str, rows: list[dict[str, Any]]) -> dict[Any, Any]:
    """Bulk-insert `rows` (batched multi-row INSERTs) and return {natural key: generated id}."""
    if not rows:
        return {}
    key_column = getattr(model, key)
    result = await session.execute(insert(model).returning(key_column, model.id), rows)
    return {row[0]: row[1] for row in result}
