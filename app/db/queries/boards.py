"""Reads behind the supervisors' live boards: one named query per board fragment.

Each runs in one statement (or two small ones) on indexed paths, because a board redraws a fragment
every time its topic changes at the site: what it costs is paid per change, not per viewer (the web
process renders a fragment once per change and language, and every open board gets that copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.orders import ORDER_STATES

CLOSED_STATES = ("dispatched", "cancelled")


@dataclass(frozen=True)
class BoardSite:
    id: int
    code: str
    name: str
    zone: ZoneInfo

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.zone)


async def board_site(session: AsyncSession, code: str) -> BoardSite | None:
    row = (
        await session.execute(
            text("SELECT id, code, name, timezone FROM sites WHERE code = :code"), {"code": code}
        )
    ).first()
    return None if row is None else BoardSite(row[0], row[1], row[2], ZoneInfo(row[3]))


# -- order pipeline ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pipeline:
    orders: dict[str, int]
    units: dict[str, int]
    late: int  # open orders past their due time

    @property
    def open_orders(self) -> int:
        return sum(n for state, n in self.orders.items() if state not in CLOSED_STATES)


_PIPELINE = text("""
    SELECT state, count(*), coalesce(sum(units), 0),
           count(*) FILTER (WHERE due_at < :now AND state NOT IN ('dispatched', 'cancelled'))
    FROM dispatch_orders WHERE site_id = :site GROUP BY state
""")


async def pipeline(session: AsyncSession, site_id: int, now: datetime) -> Pipeline:
    """Orders and units per state, and how many open orders are late."""
    orders, units, late = dict.fromkeys(ORDER_STATES, 0), dict.fromkeys(ORDER_STATES, 0), 0
    rows = await session.execute(_PIPELINE, {"site": site_id, "now": now})
    for state, count, state_units, state_late in rows:
        orders[state], units[state], late = int(count), int(state_units), late + int(state_late)
    return Pipeline(orders, units, late)


# -- late orders -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LateOrder:
    id: int
    number: str
    destination: str
    state: str
    due_at: datetime
    units: int
    outstanding: int  # units not shipped yet


@dataclass(frozen=True)
class LateOrders:
    total: int
    orders: list[LateOrder]


_LATE = text("""
    SELECT o.id, o.number, d.code, o.state, o.due_at, o.units,
           (SELECT coalesce(sum(l.quantity - l.shipped), 0)
            FROM dispatch_order_lines l WHERE l.order_id = o.id),
           count(*) OVER ()
    FROM dispatch_orders o JOIN destinations d ON d.id = o.destination_id
    WHERE o.site_id = :site AND o.due_at < :now AND o.state NOT IN ('dispatched', 'cancelled')
    ORDER BY o.due_at, o.number
    LIMIT :limit
""")


async def late_orders(session: AsyncSession, site_id: int, now: datetime, limit: int = 8) -> LateOrders:
    """The open orders past due, most overdue first."""
    rows = (await session.execute(_LATE, {"site": site_id, "now": now, "limit": limit})).all()
    return LateOrders(
        total=int(rows[0][7]) if rows else 0,
        orders=[LateOrder(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in rows],
    )


# -- pick progress per operator ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Picker:
    user_id: UUID
    name: str
    lists: list[str]  # the lists they hold now
    holding_since: datetime | None
    lines_done: int  # today
    lines_left: int  # on the lists they hold
    location: str | None  # where their last pick was
    last_pick_at: datetime | None

    def idle_since(self) -> datetime | None:
        """Since when nothing happened: the last pick, or taking a list if later."""
        moments = [m for m in (self.last_pick_at, self.holding_since) if m is not None]
        return max(moments) if moments else None


# Lists still in play, or finished today: the only ones whose tasks can count for today.
_PICKERS = text("""
    WITH lists AS (
        SELECT id, number, status, taken_by, taken_at FROM pick_lists
        WHERE site_id = :site AND (status IN ('open', 'taken') OR done_at >= :day_start)
    ), tasks AS (
        SELECT t.done_by, t.done_at, t.status, t.location_id, l.taken_by, l.status AS list_status
        FROM pick_tasks t JOIN lists l ON l.id = t.pick_list_id
    ), done AS (
        SELECT done_by AS user_id, count(*) AS lines, max(done_at) AS last_at FROM tasks
        WHERE status <> 'open' AND done_at >= :day_start GROUP BY done_by
    ), left_ AS (
        SELECT taken_by AS user_id, count(*) AS lines FROM tasks
        WHERE status = 'open' AND list_status = 'taken' GROUP BY taken_by
    ), held AS (
        SELECT taken_by AS user_id, array_agg(number ORDER BY number) AS numbers, min(taken_at) AS since
        FROM lists WHERE status = 'taken' GROUP BY taken_by
    ), here AS (
        SELECT DISTINCT ON (t.done_by) t.done_by AS user_id, loc.code
        FROM tasks t JOIN locations loc ON loc.id = t.location_id
        WHERE t.status <> 'open' AND t.done_at >= :day_start
        ORDER BY t.done_by, t.done_at DESC
    )
    SELECT u.id, u.full_name, coalesce(h.numbers, '{}'), h.since, coalesce(d.lines, 0),
           coalesce(r.lines, 0), here.code, d.last_at
    FROM users u
    LEFT JOIN held h ON h.user_id = u.id
    LEFT JOIN done d ON d.user_id = u.id
    LEFT JOIN left_ r ON r.user_id = u.id
    LEFT JOIN here ON here.user_id = u.id
    WHERE h.user_id IS NOT NULL OR d.user_id IS NOT NULL
    ORDER BY u.full_name
""")


async def pickers(session: AsyncSession, site: BoardSite, now: datetime) -> list[Picker]:
    """Everyone holding a list at the site or who picked there today."""
    params = {"site": site.id, "day_start": site.day_start(site.today(now))}
    return [
        Picker(r[0], r[1], list(r[2]), r[3], int(r[4]), int(r[5]), r[6], r[7])
        for r in await session.execute(_PICKERS, params)
    ]


# -- shortages and backorders ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shortage:
    sku: str
    product: str
    destination: str
    unallocated: int  # asked for on orders a run has seen, and not reserved
    short_picked: int  # found missing while picking, on open orders
    backordered: int  # on open backorders


@dataclass(frozen=True)
class Shortages:
    rows: list[Shortage]
    total_rows: int
    unallocated: int
    short_picked: int
    backordered: int


_SHORTAGES = text("""
    WITH per AS (
        SELECT p.sku, p.name, d.code,
               coalesce(sum(greatest(l.quantity - l.allocated - l.picked - l.shipped, 0)) FILTER (
                   WHERE o.backorder_of IS NULL AND o.state IN ('allocated', 'picking', 'picked')), 0)
                 AS unallocated,
               coalesce(sum(l.short_picked) FILTER (WHERE o.backorder_of IS NULL), 0) AS short_picked,
               coalesce(sum(l.quantity - l.shipped) FILTER (WHERE o.backorder_of IS NOT NULL), 0)
                 AS backordered
        FROM dispatch_orders o
        JOIN dispatch_order_lines l ON l.order_id = o.id
        JOIN products p ON p.id = l.product_id
        JOIN destinations d ON d.id = o.destination_id
        WHERE o.site_id = :site AND o.state NOT IN ('draft', 'dispatched', 'cancelled')
        GROUP BY p.sku, p.name, d.code
    )
    SELECT sku, name, code, unallocated, short_picked, backordered,
           count(*) OVER (), sum(unallocated) OVER (), sum(short_picked) OVER (), sum(backordered) OVER ()
    FROM per WHERE unallocated > 0 OR short_picked > 0 OR backordered > 0
    ORDER BY unallocated + short_picked + backordered DESC, sku, code
    LIMIT :limit
""")


async def shortages(session: AsyncSession, site_id: int, limit: int = 12) -> Shortages:
    """What open orders lack, by product and destination, largest first."""
    rows = (await session.execute(_SHORTAGES, {"site": site_id, "limit": limit})).all()
    first = rows[0] if rows else None
    return Shortages(
        rows=[Shortage(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows],
        total_rows=int(first[6]) if first else 0,
        unallocated=int(first[7]) if first else 0,
        short_picked=int(first[8]) if first else 0,
        backordered=int(first[9]) if first else 0,
    )


# -- throughput --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Throughput:
    today: date
    previous: date | None  # the last earlier day the site picked or dispatched anything
    lines_today: dict[int, int] = field(default_factory=dict)  # hour -> lines picked
    lines_previous: dict[int, int] = field(default_factory=dict)
    units_today: dict[int, int] = field(default_factory=dict)  # hour -> units dispatched
    units_previous: dict[int, int] = field(default_factory=dict)

    @property
    def hours(self) -> range:
        """The working hours shown: 06:00 to 21:00, widened to any hour with activity."""
        active = [*self.lines_today, *self.lines_previous, *self.units_today, *self.units_previous]
        return range(min([6, *active]), max([21, *active]) + 1)

    @property
    def peak(self) -> int:
        """The largest hourly line count of either day (the chart's scale), at least 1."""
        return max([1, *self.lines_today.values(), *self.lines_previous.values()])


# The working day before today is the last one with any pick or dispatch (within two weeks): a site that
# works on Saturdays compares Monday with Saturday, one that does not compares it with Friday.
_HOURLY = text("""
    SELECT (m.occurred_at AT TIME ZONE :zone)::date AS day,
           extract(hour FROM m.occurred_at AT TIME ZONE :zone)::int AS hour,
           count(*) FILTER (WHERE m.kind = 'pick'),
           coalesce(sum(m.quantity) FILTER (WHERE m.kind = 'dispatch'), 0)
    FROM stock_movements m JOIN locations l ON l.id = m.from_location_id
    WHERE m.kind IN ('pick', 'dispatch') AND m.occurred_at >= :since AND m.occurred_at < :until
      AND l.site_id = :site
    GROUP BY 1, 2
""")


async def throughput(session: AsyncSession, site: BoardSite, now: datetime) -> Throughput:
    """Lines picked and units dispatched per hour today and on the previous working day."""
    today = site.today(now)
    params = {
        "site": site.id,
        "zone": site.zone.key,
        "since": site.day_start(today - timedelta(days=14)),
        "until": site.day_start(today + timedelta(days=1)),
    }
    by_day: dict[date, list[tuple[int, int, int]]] = {}
    for day, hour, lines, units in await session.execute(_HOURLY, params):
        by_day.setdefault(day, []).append((int(hour), int(lines), int(units)))
    previous = max((day for day in by_day if day < today), default=None)
    result = Throughput(today, previous)
    for day, target_lines, target_units in (
        (today, result.lines_today, result.units_today),
        (previous, result.lines_previous, result.units_previous),
    ):
        for hour, lines, units in by_day.get(day, []) if day else []:
            target_lines[hour], target_units[hour] = lines, units
    return result


# -- activity feed -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str  # receipt, count_correction, dispatch_run, shipment
    subject: str  # product SKU, run policy, destination code
    place: str | None  # location code
    units: int
    reference: str | None  # document, run id, shipment number
    who: str | None


# Each kind takes its own newest rows through its own index, then the newest of all are kept.
_ACTIVITY = text("""
    (SELECT m.occurred_at AS at, m.kind, p.sku, l.code, m.quantity, m.document, u.full_name
     FROM stock_movements m
     JOIN locations l ON l.id = m.to_location_id
     JOIN products p ON p.id = m.product_id LEFT JOIN users u ON u.id = m.actor_id
     WHERE m.kind = 'receipt' AND l.site_id = :site ORDER BY m.occurred_at DESC LIMIT :limit)
    UNION ALL
    (SELECT m.occurred_at, m.kind, p.sku, l.code,
            CASE WHEN m.to_location_id IS NULL THEN -m.quantity ELSE m.quantity END, m.document, u.full_name
     FROM stock_movements m
     JOIN locations l ON l.id = coalesce(m.to_location_id, m.from_location_id)
     JOIN products p ON p.id = m.product_id LEFT JOIN users u ON u.id = m.actor_id
     WHERE m.kind = 'count_correction' AND l.site_id = :site ORDER BY m.occurred_at DESC LIMIT :limit)
    UNION ALL
    (SELECT r.finished_at, 'dispatch_run', r.policy, NULL,
            coalesce((r.summary ->> 'units_allocated')::int, 0), r.id::text, u.full_name
     FROM dispatch_runs r LEFT JOIN users u ON u.id = r.created_by
     WHERE r.site_id = :site AND r.status = 'committed' ORDER BY r.finished_at DESC LIMIT :limit)
    UNION ALL
    (SELECT s.created_at, 'shipment', d.code, NULL, s.units, s.number, u.full_name
     FROM shipments s JOIN destinations d ON d.id = s.destination_id LEFT JOIN users u ON u.id = s.created_by
     WHERE s.site_id = :site ORDER BY s.created_at DESC LIMIT :limit)
    ORDER BY at DESC LIMIT :limit
""")


async def activity(session: AsyncSession, site_id: int, limit: int = 12) -> list[Activity]:
    """The latest receipts, count corrections, dispatch runs and shipments of the site."""
    return [
        Activity(r[0], r[1], r[2], r[3], int(r[4]), r[5], r[6])
        for r in await session.execute(_ACTIVITY, {"site": site_id, "limit": limit})
    ]
