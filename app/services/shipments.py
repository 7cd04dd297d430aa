"""Shipments: what was picked for a destination leaves the dispatch dock together, with its paperwork.

Closing a shipment, in one transaction:

1. Everything picked for the destination's orders at the site (their lines' `picked`, waiting at the
   dispatch dock) is shipped: one `dispatch` movement out of the dock per product and lot, and one
   shipment line per order line and lot. The lots come from the pick tasks: what a line's tasks picked
   of each lot, less what earlier shipments of that line already took of it.
2. Each line's `picked` moves to `shipped`.
3. An order with nothing reserved any more (no open task: `allocated` is 0) is dispatched. One still
   being picked stays open, and its next shipment takes the rest.
4. A dispatched order whose lines are not fully served (short picks, or stock a run could not find)
   gets a **backorder**: a new released order `<number>-R1` (then R2…) for the same destination, with
   one line per product still owed, `quantity - shipped` units, and `backorder_of` pointing back.

Why the original's remaining need is closed, not handed over twice: dispatch runs read only orders in
the states open for allocation (app.domain.orders.OPEN_FOR_ALLOCATION), and a dispatched order is
final. From the moment the backorder exists, the original's shortfall is visible only through it:
the original keeps its ordered quantities (the delivery note and fill rates need them) but no run
will ever allocate to it again. Both happen in the same transaction, so there is no instant at which
the need is counted twice, or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import live
from app.db.live import Topic
from app.db.session import Database, driver
from app.domain.ledger import Movement, MovementKind, StockKey
from app.domain.orders import LineProgress, OrderState, backorder_lines
from app.domain.shipping import backorder_number, shipment_number
from app.services import idempotency
from app.services.errors import Invalid, NotFound, Refused
from app.services.order_progress import refresh_order_states
from app.services.picking import dispatch_dock
from app.services.stock import Actor, apply_movements_locked, lock_balances

MAX_PARCELS = 999


class NothingToShip(Refused):
    status = 409
    title = "Nothing to ship"


@dataclass(frozen=True)
class ShipmentRequest:
    site_id: int
    destination: str  # code
    parcels: int


@dataclass(frozen=True)
class _Line:
    id: int
    order_id: int
    product_id: int
    quantity: int
    allocated: int
    picked: int
    shipped: int


_DESTINATION = "SELECT id, code FROM destinations WHERE code = $1"
_SHIP_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('ship:' || $1::bigint || ':' || $2::bigint, 0))"
_PICKED_LINES = """
    SELECT l.id FROM dispatch_order_lines l JOIN dispatch_orders o ON o.id = l.order_id
    WHERE o.site_id = $1 AND o.destination_id = $2 AND l.picked > 0
      AND o.state NOT IN ('draft', 'dispatched', 'cancelled')
    ORDER BY l.id
"""
_LOTS_AT_DOCK = """
    SELECT DISTINCT t.product_id, t.lot_id FROM pick_tasks t
    WHERE t.order_line_id = ANY($1::bigint[]) AND t.picked > 0
"""
_LOCK_LINES = """
    SELECT id, order_id, product_id, quantity, allocated, picked, shipped FROM dispatch_order_lines
    WHERE id = ANY($1::bigint[]) AND picked > 0 ORDER BY id FOR UPDATE
"""
# Per order line and lot: what its tasks picked, less what shipments of that line already took.
_UNSHIPPED = """
    WITH picked AS (
        SELECT order_line_id, product_id, lot_id, sum(picked) AS units FROM pick_tasks
        WHERE order_line_id = ANY($1::bigint[]) AND picked > 0 GROUP BY 1, 2, 3),
    shipped AS (
        SELECT order_line_id, lot_id, sum(quantity) AS units FROM shipment_lines
        WHERE order_line_id = ANY($1::bigint[]) GROUP BY 1, 2)
    SELECT p.order_line_id, p.product_id, p.lot_id, p.units - coalesce(s.units, 0)
    FROM picked p LEFT JOIN shipped s
      ON s.order_line_id = p.order_line_id AND coalesce(s.lot_id, 0) = coalesce(p.lot_id, 0)
    WHERE p.units - coalesce(s.units, 0) > 0
    ORDER BY 1, coalesce(p.lot_id, 0)
"""
_NUMBER_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('shipment-number:' || $1, 0))"
_DAY_COUNT = "SELECT count(*) FROM shipments WHERE number LIKE $1 || '%'"
_INSERT_SHIPMENT = """
    INSERT INTO shipments (number, site_id, destination_id, parcels, units, created_by,
                           created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id
"""
_INSERT_LINES = """
    INSERT INTO shipment_lines (shipment_id, order_line_id, product_id, lot_id, quantity)
    SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::int[])
"""
_LINES_SHIPPED = """
    UPDATE dispatch_order_lines SET shipped = shipped + picked, picked = 0, updated_at = $2
    WHERE id = ANY($1::bigint[])
"""
_ORDER_LINES = """
    SELECT o.id, o.number, o.state, o.backorder_of IS NOT NULL, l.line_no, l.product_id,
           l.quantity, l.allocated, l.picked, l.shipped
    FROM dispatch_orders o JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.id = ANY($1::bigint[]) ORDER BY o.id, l.line_no
"""
_DISPATCHED = """
    UPDATE dispatch_orders SET state = 'dispatched', dispatched_at = $2, updated_at = $2
    WHERE id = ANY($1::bigint[])
"""
_TAKEN_NUMBERS = "SELECT number FROM dispatch_orders WHERE number LIKE $1 || '-R%'"
_INSERT_BACKORDER = """
    INSERT INTO dispatch_orders (number, site_id, destination_id, state, priority, due_at, source, units,
                                 created_by, backorder_of, released_at, created_at, updated_at)
    SELECT $1, site_id, destination_id, 'released', priority, due_at, source, $2, $3, id, $4, $4, $4
    FROM dispatch_orders WHERE id = $5
    RETURNING id
"""
_INSERT_BACKORDER_LINES = """
    INSERT INTO dispatch_order_lines (order_id, line_no, product_id, quantity, allocated, picked, shipped,
                                      short_picked, created_at, updated_at)
    SELECT $1, k.n, k.product_id, k.quantity, 0, 0, 0, 0, $5, $5
    FROM unnest($2::int[], $3::bigint[], $4::int[]) AS k(n, product_id, quantity)
"""


async def close_shipment(
    db: Database, request: ShipmentRequest, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Ship everything picked for one destination at one site; see the module docstring for the rules."""
    if not 1 <= request.parcels <= MAX_PARCELS:
        raise Invalid("The number of parcels must be from 1 to {max}.", field="parcels", max=MAX_PARCELS)
    key = idempotency.check_key(idempotency_key)
    payload = {"site": request.site_id, "destination": request.destination, "parcels": request.parcels}

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        destination = await pg.fetchrow(_DESTINATION, request.destination.strip())
        if destination is None:
            raise NotFound("Unknown destination: {code}.", code=request.destination)
        destination_id, code = destination
        await pg.execute(_SHIP_LOCK, request.site_id, destination_id)
        line_ids = [row[0] for row in await pg.fetch(_PICKED_LINES, request.site_id, destination_id)]
        if not line_ids:
            raise NothingToShip(
                "Nothing picked for {destination} at this site: nothing to ship.", destination=code
            )
        dock = await dispatch_dock(session, request.site_id)
        # Balances before order lines: the order every pick takes its locks in.
        keys = {StockKey(p, dock.id, lot) for p, lot in await pg.fetch(_LOTS_AT_DOCK, line_ids)}
        balances = await lock_balances(session, keys)
        lines = [_Line(*row) for row in await pg.fetch(_LOCK_LINES, line_ids)]
        line_ids = [line.id for line in lines]
        parts = [tuple(row) for row in await pg.fetch(_UNSHIPPED, line_ids)]
        _check_parts(lines, parts)
        missing = {StockKey(p, dock.id, lot) for _l, p, lot, _u in parts} - keys
        if missing:  # picked in between our two reads: lock those keys too
            balances |= await lock_balances(session, missing)
        by_key: dict[StockKey, int] = defaultdict(int)
        for _line, product_id, lot_id, units in parts:
            by_key[StockKey(product_id, dock.id, lot_id)] += units
        movements = [
            Movement(MovementKind.DISPATCH, k.product_id, k.lot_id, dock.id, None, units)
            for k, units in sorted(by_key.items(), key=lambda kv: kv[0].sort_key())
        ]
        number = await _next_number(session, request.site_id, now)
        live.changed(session, request.site_id, Topic.DISPATCH, Topic.ORDERS, Topic.STOCK)
        applied = await apply_movements_locked(
            session,
            movements,
            {dock.id: dock.code},
            actor,
            now,
            reason=None,
            document=number,
            locked=balances,
        )
        units = sum(units for *_rest, units in parts)
        shipment_id = await pg.fetchval(
            _INSERT_SHIPMENT,
            number,
            request.site_id,
            destination_id,
            request.parcels,
            units,
            actor.user_id,
            now,
        )
        await pg.execute(
            _INSERT_LINES,
            shipment_id,
            [p[0] for p in parts],
            [p[1] for p in parts],
            [p[2] for p in parts],
            [p[3] for p in parts],
        )
        await pg.execute(_LINES_SHIPPED, line_ids, now)
        dispatched, backorders = await _settle_orders(
            session, sorted({line.order_id for line in lines}), actor, now
        )
        return {
            "shipment": shipment_id,
            "number": number,
            "destination": code,
            "parcels": request.parcels,
            "units": units,
            "lines": len(parts),
            "movements": applied["movements"],
            "dispatched": dispatched,
            "backorders": backorders,
        }

    return await idempotency.once(db, actor.scope, key, payload, now, operation)


def _check_parts(lines: list[_Line], parts: list[tuple[Any, ...]]) -> None:
    """The lots found for each line add up to what the line says is picked (else the records disagree)."""
    found: dict[int, int] = defaultdict(int)
    for line_id, _product, _lot, units in parts:
        found[line_id] += units
    for line in lines:
        if found.get(line.id, 0) != line.picked:
            raise RuntimeError(f"order line {line.id}: {line.picked} picked, {found.get(line.id, 0)} by lot")


async def _next_number(session: AsyncSession, site_id: int, now: datetime) -> str:
    """The next EXP-YYYYMMDD-NNNN of the site's day, under a lock so two shipments never share one."""
    pg = await driver(session)
    zone = await pg.fetchval("SELECT timezone FROM sites WHERE id = $1", site_id)
    day = now.astimezone(ZoneInfo(zone or "UTC")).date()
    prefix = f"EXP-{day:%Y%m%d}-"
    await pg.execute(_NUMBER_LOCK, prefix)
    return shipment_number(day, int(await pg.fetchval(_DAY_COUNT, prefix)) + 1)


async def _settle_orders(
    session: AsyncSession, order_ids: list[int], actor: Actor, now: datetime
) -> tuple[list[str], list[str]]:
    """Dispatch the orders with nothing reserved any more, with a backorder for what they still owe."""
    pg = await driver(session)
    orders: dict[int, tuple[str, OrderState, bool, list[tuple[int, LineProgress]]]] = {}
    for row in await pg.fetch(_ORDER_LINES, order_ids):
        order_id, number, state, is_backorder, _line_no, product_id, quantity, allocated, picked, shipped = (
            row
        )
        entry = orders.setdefault(order_id, (number, OrderState(state), is_backorder, []))
        entry[3].append((product_id, LineProgress(quantity, allocated, picked, shipped)))
    done = [order_id for order_id, entry in orders.items() if not any(p.allocated for _, p in entry[3])]
    await refresh_order_states(session, [i for i in orders if i not in done], now)
    if not done:
        return [], []
    await pg.execute(_DISPATCHED, done, now)
    backorders = []
    for order_id in done:
        number, _state, is_backorder, lines = orders[order_id]
        owed = [
            (product_id, units)
            for (product_id, _progress), units in zip(
                lines, backorder_lines(p for _, p in lines), strict=True
            )
            if units > 0
        ]
        if owed:
            backorders.append(await _backorder(session, order_id, number, is_backorder, owed, actor, now))
    return [orders[i][0] for i in done], backorders


async def _backorder(
    session: AsyncSession,
    order_id: int,
    number: str,
    is_backorder: bool,
    owed: list[tuple[int, int]],
    actor: Actor,
    now: datetime,
) -> str:
    pg = await driver(session)
    root = number.rsplit("-R", 1)[0] if is_backorder else number
    taken = {row[0] for row in await pg.fetch(_TAKEN_NUMBERS, root)}
    new_number = backorder_number(number, is_backorder=is_backorder, taken=taken)
    new_id = await pg.fetchval(
        _INSERT_BACKORDER, new_number, sum(u for _, u in owed), actor.user_id, now, order_id
    )
    await pg.execute(
        _INSERT_BACKORDER_LINES,
        new_id,
        list(range(1, len(owed) + 1)),
        [p for p, _ in owed],
        [u for _, u in owed],
        now,
    )
    return new_number
