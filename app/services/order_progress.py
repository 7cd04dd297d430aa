"""Orders follow the work on their lines: after a pick, a list taken or given back, or a shipment.

Inside the caller's transaction. The state comes from app.domain.orders.progress_state, never set by
hand, so the state and the figures of the lines cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import driver
from app.domain.orders import LineProgress, OrderState, progress_state

# Per order: its state, its lines' figures, and whether one of its open tasks is on a taken list.
_PROGRESS = """
    SELECT o.id, o.state, sum(l.quantity), sum(l.allocated), sum(l.picked), sum(l.shipped),
           EXISTS (SELECT 1 FROM pick_tasks t
                   JOIN dispatch_order_lines tl ON tl.id = t.order_line_id
                   JOIN pick_lists pl ON pl.id = t.pick_list_id
                   WHERE tl.order_id = o.id AND t.status = 'open' AND pl.status = 'taken')
    FROM dispatch_orders o JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.id = ANY($1::bigint[])
    GROUP BY o.id, o.state
    ORDER BY o.id
"""
_SET_STATES = """
    UPDATE dispatch_orders o SET state = k.state, updated_at = $3
    FROM unnest($1::bigint[], $2::text[]) AS k(id, state) WHERE o.id = k.id
"""


async def refresh_order_states(
    session: AsyncSession, order_ids: Collection[int], now: datetime
) -> dict[int, OrderState]:
    """Put each order in the state its lines' work says; returns every order's state afterwards."""
    if not order_ids:
        return {}
    pg = await driver(session)
    states: dict[int, OrderState] = {}
    changed: list[tuple[int, str]] = []
    for order_id, state, quantity, allocated, picked, shipped, being_picked in await pg.fetch(
        _PROGRESS, sorted(set(order_ids))
    ):
        current = OrderState(state)
        line = LineProgress(int(quantity), int(allocated), int(picked), int(shipped))
        wanted = progress_state(current, [line], being_picked=being_picked)
        states[order_id] = wanted
        if wanted is not current:
            changed.append((order_id, wanted.value))
    if changed:
        await pg.execute(_SET_STATES, [i for i, _ in changed], [s for _, s in changed], now)
    return states
