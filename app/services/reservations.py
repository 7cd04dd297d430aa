"""Reservations: stock set aside for pick tasks, inside the caller's transaction.

A balance's `reserved` is always the sum of the open pick tasks on its key: a run adds to it when it
creates tasks, a pick consumes it (the `pick` movement), and releasing a task (order cancelled, short
pick) gives it back. These helpers are the only writers of `reserved` besides the pick movement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.arrays import int_array
from app.db.session import driver
from app.domain.ledger import StockKey
from app.services.stock import lock_balances

_RESERVE = """
    UPDATE stock_balances b SET reserved = b.reserved + k.units, updated_at = $5
    FROM unnest($1::text::bigint[], $2::text::bigint[], $3::text::bigint[], $4::text::int[])
         AS k(product_id, location_id, lot, units)
    WHERE b.product_id = k.product_id AND b.location_id = k.location_id AND coalesce(b.lot_id, 0) = k.lot
"""


async def change_reserved(session: AsyncSession, units: Mapping[StockKey, int], now: datetime) -> None:
    """Add (or, negative, take back) reserved units per key; the balances' CHECKs refuse any excess.

    The caller holds the keys' locks (a run's FOR UPDATE, or `lock_balances`).
    """
    await apply_reserved(session, sorted((key.sort_key(), n) for key, n in units.items() if n), now)


async def apply_reserved(
    session: AsyncSession, changes: Sequence[tuple[tuple[int, int, int], int]], now: datetime
) -> None:
    """`change_reserved` for a caller that already has its keys as `StockKey.sort_key()` tuples (lot-less
    stock as lot 0), in that order, each with its units: a run's 40,000 keys, without a `StockKey` each."""
    if not changes:
        return
    await (await driver(session)).execute(
        _RESERVE,
        int_array(key[0] for key, _ in changes),
        int_array(key[1] for key, _ in changes),
        int_array(key[2] for key, _ in changes),
        int_array(n for _, n in changes),
        now,
    )


@dataclass(frozen=True)
class Released:
    tasks: int
    units: int
    order_ids: frozenset[int]
    lists_cancelled: int = 0  # open lists left with nothing to pick


_OPEN_TASKS = """
    SELECT t.id, t.product_id, t.location_id, t.lot_id, t.quantity, t.order_line_id, l.order_id,
           t.pick_list_id
    FROM pick_tasks t JOIN dispatch_order_lines l ON l.id = t.order_line_id
    WHERE t.id = ANY($1::bigint[]) AND t.status = 'open'
    ORDER BY t.id
    FOR UPDATE OF t
"""
_MARK_RELEASED = "UPDATE pick_tasks SET status = 'released', done_at = $2 WHERE id = ANY($1::bigint[])"
# An open list left with no task to pick is cancelled (a taken one finishes as its picker goes on).
_CANCEL_EMPTIED_LISTS = """
    UPDATE pick_lists pl SET status = 'cancelled', done_at = $2, updated_at = $2
    WHERE pl.id = ANY($1::bigint[]) AND pl.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM pick_tasks t WHERE t.pick_list_id = pl.id AND t.status = 'open')
"""
_UNALLOCATE_LINES = """
    UPDATE dispatch_order_lines l SET allocated = l.allocated - k.units, updated_at = $3
    FROM unnest($1::bigint[], $2::int[]) AS k(id, units) WHERE l.id = k.id
"""


async def release_tasks(session: AsyncSession, task_ids: Sequence[int], now: datetime) -> Released:
    """Give back the stock reserved by these tasks (those still open) and the need of their lines; an
    open list left with nothing to pick is cancelled. The caller refreshes the orders' states."""
    pg = await driver(session)
    rows = await pg.fetch(_OPEN_TASKS, list(task_ids))
    if not rows:
        return Released(0, 0, frozenset())
    by_key: dict[StockKey, int] = {}
    by_line: dict[int, int] = {}
    for _id, product_id, location_id, lot_id, quantity, line_id, _order, _list in rows:
        key = StockKey(product_id, location_id, lot_id)
        by_key[key] = by_key.get(key, 0) - quantity
        by_line[line_id] = by_line.get(line_id, 0) + quantity
    await lock_balances(session, set(by_key))
    await change_reserved(session, by_key, now)
    await pg.execute(_MARK_RELEASED, [row[0] for row in rows], now)
    await unallocate_lines(session, by_line, now)
    cancelled = await pg.execute(_CANCEL_EMPTIED_LISTS, sorted({row[7] for row in rows}), now)
    return Released(
        len(rows), -sum(by_key.values()), frozenset(row[6] for row in rows), int(cancelled.split()[-1])
    )


async def unallocate_lines(session: AsyncSession, units_by_line: dict[int, int], now: datetime) -> None:
    """Take units off the lines' `allocated` (their need grows back by as much)."""
    lines = sorted(units_by_line.items())
    await (await driver(session)).execute(
        _UNALLOCATE_LINES, [line for line, _ in lines], [units for _, units in lines], now
    )
