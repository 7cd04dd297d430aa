"""Reads behind the picking screens, the printed pick list and the pick-list API."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PickListRow:
    id: int
    number: str
    site_id: int
    site: str  # code
    zone: str
    status: str
    taken_by: UUID | None
    taken_by_name: str | None
    taken_at: datetime | None
    done_at: datetime | None
    created_at: datetime
    tasks: int
    open_tasks: int
    units: int  # asked for by its tasks
    picked: int
    short: int


@dataclass(frozen=True)
class TaskRow:
    """One task as screens and the API show it; satisfies app.domain.picking.OnPath."""

    task_id: int
    pick_list_id: int
    status: str
    pick_seq: int
    location: str
    location_barcode: str
    sku: str
    product: str  # name
    pack_size: int
    lot_tracked: bool
    lot: str | None
    expiry: date | None
    quantity: int
    picked: int
    short: int
    order: str  # number
    destination: str  # code
    done_at: datetime | None


_LISTS = """
    SELECT pl.id, pl.number, pl.site_id, s.code, pl.zone, pl.status, pl.taken_by, u.full_name, pl.taken_at,
           pl.done_at, pl.created_at, count(t.id), count(t.id) FILTER (WHERE t.status = 'open'),
           coalesce(sum(t.quantity), 0), coalesce(sum(t.picked), 0), coalesce(sum(t.short), 0)
    FROM pick_lists pl
    JOIN sites s ON s.id = pl.site_id
    LEFT JOIN users u ON u.id = pl.taken_by
    LEFT JOIN pick_tasks t ON t.pick_list_id = pl.id AND t.status <> 'released'
    WHERE (CAST(:every_site AS boolean) OR pl.site_id = ANY(CAST(:site_ids AS bigint[])))
      AND (CAST(:status AS text) IS NULL OR pl.status = :status)
      AND (CAST(:list_id AS bigint) IS NULL OR pl.id = :list_id)
      AND (pl.status IN ('open', 'taken') OR (pl.status = 'done' AND pl.done_at >= :done_since)
           OR CAST(:status AS text) IN ('done', 'cancelled') OR CAST(:list_id AS bigint) IS NOT NULL)
    GROUP BY pl.id, s.code, u.full_name
    ORDER BY CASE pl.status WHEN 'taken' THEN 0 WHEN 'open' THEN 1 ELSE 2 END, pl.zone, pl.number
    LIMIT :limit OFFSET :offset
"""


async def pick_lists(
    session: AsyncSession,
    site_ids: Collection[int] | None,
    *,
    status: str | None = None,
    done_since: datetime,
    limit: int = 200,
    offset: int = 0,
) -> list[PickListRow]:
    """Pick lists of some sites (None: every site): being picked, then open, then recently done (a status
    asked for: every list in it, cancelled ones included)."""
    return await _lists(session, site_ids, status, None, done_since, limit, offset)


async def pick_list(session: AsyncSession, site_id: int, list_id: int) -> PickListRow | None:
    """One list of a site, whatever its status."""
    rows = await _lists(session, [site_id], None, list_id, EPOCH, 1, 0)
    return rows[0] if rows else None


async def _lists(
    session: AsyncSession,
    site_ids: Collection[int] | None,
    status: str | None,
    list_id: int | None,
    done_since: datetime,
    limit: int,
    offset: int,
) -> list[PickListRow]:
    params: dict[str, Any] = {
        "every_site": site_ids is None,
        "site_ids": list(site_ids or []),
        "status": status,
        "list_id": list_id,
        "done_since": done_since,
        "limit": limit,
        "offset": offset,
    }
    return [PickListRow(*row) for row in await session.execute(text(_LISTS), params)]


_TASKS = """
    SELECT t.id, t.pick_list_id, t.status, t.pick_seq, loc.code, loc.barcode, p.sku, p.name, p.pack_size,
           p.lot_tracked, lot.code, lot.expiry, t.quantity, t.picked, t.short, o.number, d.code, t.done_at
    FROM pick_tasks t
    JOIN locations loc ON loc.id = t.location_id
    JOIN products p ON p.id = t.product_id
    LEFT JOIN lots lot ON lot.id = t.lot_id
    JOIN dispatch_order_lines l ON l.id = t.order_line_id
    JOIN dispatch_orders o ON o.id = l.order_id
    JOIN destinations d ON d.id = o.destination_id
    WHERE t.pick_list_id = ANY(CAST(:list_ids AS bigint[])) AND t.status <> 'released'
    ORDER BY t.pick_list_id, t.pick_seq, loc.code, p.sku, t.id
"""


async def list_tasks(session: AsyncSession, list_ids: Collection[int]) -> list[TaskRow]:
    """The tasks of some lists (released ones left out), roughly in walking order."""
    if not list_ids:
        return []
    rows = await session.execute(text(_TASKS), {"list_ids": list(list_ids)})
    return [TaskRow(*row) for row in rows]


_PEOPLE = """
    SELECT u.username, u.full_name FROM users u
    WHERE u.is_active AND (u.role = 'admin'
          OR EXISTS (SELECT 1 FROM user_sites us WHERE us.user_id = u.id AND us.site_id = :site))
    ORDER BY u.full_name
"""


async def people_of_site(session: AsyncSession, site_id: int) -> list[tuple[str, str]]:
    """(username, full name) of everyone who may pick at a site: whom a list can be handed to."""
    return [(u, n) for u, n in await session.execute(text(_PEOPLE), {"site": site_id})]


@dataclass(frozen=True)
class TakenList:
    """A list the person has taken and not finished: where their work resumes."""

    id: int
    number: str
    site: str  # code
    zone: str
    tasks: int
    open_tasks: int


@dataclass(frozen=True)
class PickingAtHome:
    waiting: dict[int, int]  # lists nobody has taken yet, per site id
    mine: list[TakenList]  # oldest taken first


_WAITING = """
    SELECT site_id, count(*) FROM pick_lists
    WHERE status = 'open' AND (CAST(:every_site AS boolean) OR site_id = ANY(CAST(:site_ids AS bigint[])))
    GROUP BY site_id
"""
_TAKEN_BY = """
    SELECT pl.id, pl.number, s.code, pl.zone, count(t.id), count(t.id) FILTER (WHERE t.status = 'open')
    FROM pick_lists pl
    JOIN sites s ON s.id = pl.site_id
    LEFT JOIN pick_tasks t ON t.pick_list_id = pl.id AND t.status <> 'released'
    WHERE pl.status = 'taken' AND pl.taken_by = :me
      AND (CAST(:every_site AS boolean) OR pl.site_id = ANY(CAST(:site_ids AS bigint[])))
    GROUP BY pl.id, s.code
    ORDER BY pl.taken_at, pl.id
"""


async def picking_at_home(session: AsyncSession, site_ids: Collection[int] | None, me: UUID) -> PickingAtHome:
    """What the home page says of picking: lists waiting per site, and the person's own taken lists."""
    scope = {"every_site": site_ids is None, "site_ids": list(site_ids or [])}
    waiting = {site: int(n) for site, n in await session.execute(text(_WAITING), scope)}
    mine = [TakenList(*row) for row in await session.execute(text(_TAKEN_BY), {**scope, "me": me})]
    return PickingAtHome(waiting, mine)
