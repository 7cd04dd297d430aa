"""Reads behind the dispatch screens: open demand, run history, a run's explanation and pick lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class SiteDefaults:
    policy: str
    rounding: str
    spill: bool


@dataclass(frozen=True)
class OpenDemandFigures:
    orders: int
    lines: int
    units: int
    products: int
    destinations: int


@dataclass(frozen=True)
class RunUndone:
    """What undoing a run gave back, as the run keeps it."""

    at: datetime
    by: str
    tasks: int
    units: int
    orders: int
    lists_cancelled: int
    lists_kept: int

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> RunUndone | None:
        if stored is None:
            return None
        return cls(**{**stored, "at": datetime.fromisoformat(stored["at"])})


@dataclass(frozen=True)
class RunRow:
    id: int
    site_id: int
    policy: str
    rounding: str
    spill: bool
    status: str
    phase: str
    progress_total: int
    progress_done: int
    summary: dict[str, Any]
    error: dict[str, Any] | None
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    undone_record: dict[str, Any] | None  # as stored, when a supervisor undid it (app/services/run_undo.py)
    due_by: datetime | None  # its cut-off: only orders due by then took part

    @property
    def undone(self) -> RunUndone | None:
        return RunUndone.of(self.undone_record)

    @property
    def finished(self) -> bool:
        return self.status in {"committed", "stale", "failed"}


@dataclass(frozen=True)
class ExplanationRow:
    sku: str
    name: str
    destination: str
    destination_name: str
    tier: int
    need_units: int
    min_units: int | None
    max_units: int | None
    pack_size: int
    quota_numerator: int
    quota_denominator: int
    packs: int
    eaches: int
    units: int
    reason: str

    @property
    def quota(self) -> float:
        return self.quota_numerator / self.quota_denominator

    @property
    def rounding_step(self) -> int:
        return self.packs - self.quota_numerator // self.quota_denominator

    @property
    def fill_rate(self) -> float:
        return self.units / self.need_units if self.need_units else 1.0


@dataclass(frozen=True)
class DestinationTotal:
    code: str
    name: str
    need_units: int
    units: int

    @property
    def fill_rate(self) -> float:
        return self.units / self.need_units if self.need_units else 1.0


@dataclass(frozen=True)
class RunPickList:
    id: int
    number: str
    zone: str
    status: str
    tasks: int
    units: int
    done_tasks: int
    taken_by_name: str | None  # who is picking it now
    taken_at: datetime | None


async def site_defaults(session: AsyncSession, site_id: int) -> SiteDefaults:
    row = (
        await session.execute(
            text("SELECT dispatch_policy, dispatch_rounding, dispatch_spill FROM sites WHERE id = :id"),
            {"id": site_id},
        )
    ).one()
    return SiteDefaults(*row)


_OPEN_DEMAND = text("""
    SELECT count(DISTINCT o.id), count(l.id),
           coalesce(sum(l.quantity - l.allocated - l.picked - l.shipped), 0),
           count(DISTINCT l.product_id), count(DISTINCT o.destination_id)
    FROM dispatch_orders o JOIN dispatch_order_lines l ON l.order_id = o.id
    WHERE o.site_id = :site AND o.state = ANY(CAST(:states AS text[]))
      AND l.quantity - l.allocated - l.picked - l.shipped > 0
""")


async def open_demand_figures(session: AsyncSession, site_id: int, states: list[str]) -> OpenDemandFigures:
    """What the next run of the site would consider."""
    row = (await session.execute(_OPEN_DEMAND, {"site": site_id, "states": states})).one()
    return OpenDemandFigures(*(int(v) for v in row))


_RUN_COLUMNS = """
    r.id, r.site_id, r.policy, r.rounding, r.spill, r.status, r.phase, r.progress_total, r.progress_done,
    r.summary, r.error, u.full_name, r.created_at, r.finished_at, r.undone, r.due_by
"""


async def recent_runs(session: AsyncSession, site_id: int, limit: int = 20) -> list[RunRow]:
    """The site's runs, newest first: who, when, policy and results."""
    rows = await session.execute(
        text(f"""SELECT {_RUN_COLUMNS} FROM dispatch_runs r LEFT JOIN users u ON u.id = r.created_by
                 WHERE r.site_id = :site ORDER BY r.id DESC LIMIT :limit"""),
        {"site": site_id, "limit": limit},
    )
    return [RunRow(*row) for row in rows]


async def run_site_code(session: AsyncSession, run_id: int) -> str | None:
    """The code of the site a run belongs to (None for an unknown run)."""
    code = await session.scalar(
        text("SELECT s.code FROM dispatch_runs r JOIN sites s ON s.id = r.site_id WHERE r.id = :id"),
        {"id": run_id},
    )
    return None if code is None else str(code)


async def run_by_id(session: AsyncSession, site_id: int, run_id: int) -> RunRow | None:
    row = (
        await session.execute(
            text(f"""SELECT {_RUN_COLUMNS} FROM dispatch_runs r LEFT JOIN users u ON u.id = r.created_by
                     WHERE r.site_id = :site AND r.id = :id"""),
            {"site": site_id, "id": run_id},
        )
    ).one_or_none()
    return None if row is None else RunRow(*row)


_EXPLANATION = """
    FROM dispatch_run_lines r
    JOIN products p ON p.id = r.product_id JOIN destinations d ON d.id = r.destination_id
    WHERE r.run_id = :run
      AND (NOT CAST(:short_only AS boolean) OR r.units < r.need_units)
      AND (CAST(:q AS text) = '' OR p.sku ILIKE :like OR d.code ILIKE :like)
"""


async def run_explanation(
    session: AsyncSession, run_id: int, *, q: str, short_only: bool, limit: int, offset: int
) -> tuple[list[ExplanationRow], int]:
    """One page of a committed run's explanation (by product, then priority), and the number of rows."""
    params = {
        "run": run_id,
        "q": q,
        "like": f"%{q}%",
        "short_only": short_only,
        "limit": limit,
        "offset": offset,
    }
    total = await session.scalar(text("SELECT count(*) " + _EXPLANATION), params)
    rows = await session.execute(
        text(
            """SELECT p.sku, p.name, d.code, d.name, r.tier, r.need_units, r.min_units, r.max_units,
                      r.pack_size, r.quota_numerator, r.quota_denominator, r.packs, r.eaches, r.units,
                      r.reason """
            + _EXPLANATION
            + " ORDER BY p.sku, r.tier, r.need_units DESC, d.code LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    return [ExplanationRow(*row) for row in rows], int(total or 0)


async def run_destination_totals(session: AsyncSession, run_id: int) -> list[DestinationTotal]:
    rows = await session.execute(
        text("""SELECT d.code, d.name, sum(r.need_units), sum(r.units) FROM dispatch_run_lines r
                JOIN destinations d ON d.id = r.destination_id WHERE r.run_id = :run
                GROUP BY d.code, d.name ORDER BY d.code"""),
        {"run": run_id},
    )
    return [DestinationTotal(code, name, int(need), int(units)) for code, name, need, units in rows]


async def run_pick_lists(session: AsyncSession, run_id: int) -> list[RunPickList]:
    """The run's lists with what is on them to pick (tasks given back do not count: a cancelled list
    shows none)."""
    rows = await session.execute(
        text("""SELECT pl.id, pl.number, pl.zone, pl.status, count(t.id), coalesce(sum(t.quantity), 0),
                       count(t.id) FILTER (WHERE t.status <> 'open'),
                       CASE WHEN pl.status = 'taken' THEN u.full_name END, pl.taken_at
                FROM pick_lists pl LEFT JOIN pick_tasks t ON t.pick_list_id = pl.id AND t.status <> 'released'
                LEFT JOIN users u ON u.id = pl.taken_by
                WHERE pl.run_id = :run GROUP BY pl.id, u.full_name ORDER BY pl.zone, pl.number"""),
        {"run": run_id},
    )
    return [RunPickList(*row) for row in rows]


async def names_of(
    session: AsyncSession, product_ids: list[int], destination_ids: list[int]
) -> tuple[dict[int, str], dict[int, str]]:
    """Product and destination names for a page of preview rows (the plan carries codes only)."""
    products = await session.execute(
        text("SELECT id, name FROM products WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": product_ids}
    )
    destinations = await session.execute(
        text("SELECT id, name FROM destinations WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": destination_ids},
    )
    return dict(products.all()), dict(destinations.all())
