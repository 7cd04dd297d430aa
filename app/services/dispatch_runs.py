"""Dispatch runs: split a site's scarce stock between its open orders, explain it, and reserve it.

A preview reads one consistent snapshot and writes nothing. A commit takes the site's dispatch lock
(two commits of one site run one after the other), locks the balance rows it reads (in key order, the
order every stock change locks in), refuses if the inputs differ from what the supervisor previewed,
then writes in bulk, in one transaction: the run and its explanation, pick lists and tasks, reserved
stock, the order lines' allocated units and the orders' state. A large run is committed by the worker
(requested through the outbox in the same transaction as the run row) and reports its progress. It is
planned in parts of whole products, and PostgreSQL writes each part while the next one is planned.

The plan, the inputs' fingerprint, the explanation rows and the pick lists are computed in a thread
(`asyncio.to_thread`): a large site's plan is seconds of CPU, which on the event loop would freeze every
other request and live board of the process (or the worker's other jobs) for as long. In a thread, the
interpreter gives the loop its turn every few milliseconds (bench.dispatch_run measures the longest
hold: under 0.1 s for a 100,000-line preview, 3.5 s before).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import live
from app.db.arrays import int_array
from app.db.live import Topic
from app.db.queries.dispatch_inputs import OpenDemand, available_stock, count_open_lines, open_demand
from app.db.session import Database, driver
from app.domain.allocation import Explanation, Policy, Rounding
from app.domain.allocation.plan import (
    OpenLine,
    Plan,
    StockAt,
    Task,
    fingerprint,
    parts_by_product,
    plan_dispatch,
)
from app.domain.ledger import StockKey
from app.domain.orders import OPEN_FOR_ALLOCATION
from app.services import idempotency
from app.services.collector import collector_paused
from app.services.errors import Invalid, NotFound, Refused
from app.services.order_progress import refresh_order_states
from app.services.outbox import request_job
from app.services.reservations import apply_reserved
from app.services.stock import Actor

JOB = "dispatch_run"
OPEN_STATES = sorted(state.value for state in OPEN_FOR_ALLOCATION)
_T = TypeVar("_T")


class StaleInputs(Refused):
    status = 409
    title = "Inputs changed since the preview"


class NothingToAllocate(Refused):
    status = 409
    title = "Nothing to allocate"


@dataclass(frozen=True)
class RunOptions:
    policy: Policy = Policy.PROPORTIONAL
    rounding: Rounding = Rounding.LARGEST_REMAINDER
    spill: bool = False
    # A cut-off: only orders due by then take part (today's, say, before tomorrow's get a share of what
    # is short). None: every open order.
    due_by: datetime | None = None

    @classmethod
    def parse(cls, policy: str, rounding: str, spill: bool, due_by: datetime | None = None) -> RunOptions:
        """Options from a form or a request body, refused with the allowed values when unknown."""
        try:
            return cls(Policy(policy), Rounding(rounding), spill, due_by)
        except ValueError:
            raise Invalid(
                "Unknown policy or rounding: {policy}, {rounding}.",
                field="policy",
                policy=policy,
                rounding=rounding,
            ) from None


@dataclass(frozen=True)
class RunPreview:
    """What a run would do now: its plan, and the fingerprint of the inputs it was computed on."""

    site_id: int
    options: RunOptions
    inputs: str
    demand: OpenDemand
    stock: list[StockAt]
    plan: Plan

    def summary(self) -> dict[str, Any]:
        return _summary(self.demand, _tally(self.demand.lines, self.plan))


async def preview_dispatch_run(
    db: Database, site_id: int, options: RunOptions, *, now: datetime
) -> RunPreview:
    """The run as it would be committed now. Writes nothing and takes no lock."""
    return (await preview_dispatch_runs(db, site_id, [options], now=now))[0]


async def preview_dispatch_runs(
    db: Database, site_id: int, options: Sequence[RunOptions], *, now: datetime
) -> list[RunPreview]:
    """The run under each of these options, all from one reading of demand and stock: a comparison
    compares rules, never two moments (and a large site's demand is read once, not once per rule). The
    options share their cut-off (`due_by`): it decides which demand is read."""
    due_by = options[0].due_by
    if any(rules.due_by != due_by for rules in options):
        raise ValueError("options compared on one reading share their cut-off")
    with collector_paused():
        async with db.transaction() as session:
            pg = await driver(session)
            # One snapshot for demand and stock, as a commit sees them under its locks.
            await pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            today = await _site_today(pg, site_id, now)
            demand = await open_demand(pg, site_id, OPEN_STATES, due_by)
            stock = await available_stock(pg, site_id, list(demand.products), lock=False)
        inputs = await asyncio.to_thread(_fingerprint, demand, stock, today)
        return [
            RunPreview(
                site_id,
                rules,
                inputs,
                demand,
                stock,
                await asyncio.to_thread(_plan, demand, demand.lines, stock, rules, today),
            )
            for rules in options
        ]


async def start_dispatch_run(
    db: Database,
    site_id: int,
    options: RunOptions,
    *,
    expected_inputs: str | None,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
    inline_max_lines: int,
    pick_list_max_tasks: int,
) -> tuple[int, dict[str, Any]]:
    """Commit a run now, or queue it for the worker when it has more than `inline_max_lines` lines.

    Returns (201, {"run_id", "status": "committed", "summary"}) or (202, {"run_id", "status": "queued"}).
    A replay with the same key returns the first answer.
    """
    key = idempotency.check_key(idempotency_key)
    payload = {"site": site_id, "options": asdict(options), "expected": expected_inputs}

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        lines = await count_open_lines(pg, site_id, OPEN_STATES, options.due_by)
        if not lines:
            raise NothingToAllocate("No open demand to allocate at this site.")
        queued = lines > inline_max_lines
        run_id = await pg.fetchval(
            _INSERT_RUN,
            site_id,
            options.policy.value,
            options.rounding.value,
            options.spill,
            "queued" if queued else "running",
            expected_inputs,
            actor.user_id,
            now,
            lines,
            options.due_by,
        )
        if queued:
            await request_job(session, JOB, run_id=run_id, pick_list_max_tasks=pick_list_max_tasks)
            return {"run_id": run_id, "status": "queued", "lines": lines}
        summary = await _commit(session, run_id, site_id, options, expected_inputs, now, pick_list_max_tasks)
        return {"run_id": run_id, "status": "committed", "summary": summary}

    status, answer = await idempotency.once(db, actor.scope, key, payload, now, operation)
    return (202 if answer.get("status") == "queued" else status), answer


async def dispatch_run_job(session: AsyncSession, kwargs: dict[str, Any]) -> dict[str, int]:
    """The worker's side of a queued run: commit it, reporting progress; a refusal is recorded on the run."""
    pg = await driver(session)
    run = await pg.fetchrow(_QUEUED_RUN, kwargs["run_id"])
    if run is None:
        return {"skipped": 1}
    now = kwargs.get("now") or await pg.fetchval("SELECT now()")
    options = RunOptions(Policy(run["policy"]), Rounding(run["rounding"]), run["spill"], run["due_by"])
    progress = _Progress(session.bind, run["id"])  # type: ignore[arg-type]
    try:
        summary = await _commit(
            session,
            run["id"],
            run["site_id"],
            options,
            run["inputs_hash"],
            now,
            kwargs.get("pick_list_max_tasks", 40),
            progress,
        )
    except Refused as refusal:
        # Refusals come before any write: the run's row records why, in the job's own transaction.
        status = "stale" if isinstance(refusal, StaleInputs) else "failed"
        await pg.execute(_FINISH, run["id"], status, "{}", json.dumps(refusal.stored()), now)
        return {"refused": 1}
    except Exception:
        await progress.fail()
        raise
    return {"lines": summary["lines"], "tasks": summary["tasks"], "units": summary["units_allocated"]}


async def _commit(*args: Any) -> dict[str, Any]:
    with collector_paused():
        return await _commit_now(*args)


async def _commit_now(
    session: AsyncSession,
    run_id: int,
    site_id: int,
    options: RunOptions,
    expected_inputs: str | None,
    now: datetime,
    pick_list_max_tasks: int,
    progress: _Progress | None = None,
) -> dict[str, Any]:
    pg = await driver(session)
    await hold_site_dispatch(session, site_id)
    await _report(progress, "loading")
    today = await _site_today(pg, site_id, now)
    demand = await open_demand(pg, site_id, OPEN_STATES, options.due_by)
    stock = await available_stock(pg, site_id, list(demand.products), lock=True)
    if not demand.lines:
        raise NothingToAllocate("No open demand to allocate at this site.")
    # With no preview to match (the API may commit directly), no digest: 0.3 s at 100,000 lines.
    stale = expected_inputs is not None and (
        await asyncio.to_thread(_fingerprint, demand, stock, today) != expected_inputs
    )
    if stale:
        raise StaleInputs("Orders or stock changed since the preview: preview the run again.")
    await _report(progress, "allocating", len(demand.lines), 0)
    live.changed(session, site_id, Topic.DISPATCH, Topic.ORDERS, Topic.PICKING, Topic.STOCK)
    parts, lists = await _plan_and_reserve(
        session, run_id, demand, stock, options, today, now, progress, pick_list_max_tasks
    )
    await _report(progress, "writing", len(demand.lines), len(demand.lines))
    await _write_tasks(session, run_id, site_id, lists, now)
    # The one rule of an order's state: app.domain.orders.progress_state.
    await refresh_order_states(session, sorted({o for part in parts for o in part.reserved.order_ids}), now)
    summary = {**_summary(demand, sum((part.tally for part in parts), Counter())), "pick_lists": len(lists)}
    await pg.execute(_FINISH, run_id, "committed", json.dumps(summary), None, now)
    return summary


async def hold_site_dispatch(session: AsyncSession, site_id: int) -> None:
    """Wait for the site's dispatch run in flight, if any, and keep others out until this transaction ends.

    Runs hold it while they read demand and reserve; a change that takes demand away or replaces it
    (cancelling or editing an order) holds it too, so a run never reserves for an order changed under it.
    Deleting an order line takes it as well (migration 20261130_01), in the database itself.
    """
    await (await driver(session)).execute(_SITE_LOCK, site_id)


def _fingerprint(demand: OpenDemand, stock: list[StockAt], today: date) -> str:
    return fingerprint(demand.lines, demand.products, demand.destinations, stock, today)


def _plan(
    demand: OpenDemand, lines: list[OpenLine], stock: list[StockAt], options: RunOptions, today: date
) -> Plan:
    """The plan of these lines (all of `demand`'s, or a part's) and their stock, under the run's rules."""
    return plan_dispatch(
        lines,
        demand.products,
        demand.destinations,
        stock,
        policy=options.policy,
        rounding=options.rounding,
        spill=options.spill,
        today=today,
    )


def _tally(lines: Sequence[OpenLine], plan: Plan) -> Counter[str]:
    """A plan's figures that add up over a run's parts."""
    return Counter(
        units_requested=sum(line.need for line in lines),
        units_allocated=plan.units_allocated,
        shortage_units=sum(line.shortage_units for a in plan.allocations for line in a.lines),
        tasks=len(plan.tasks),
    )


def _summary(demand: OpenDemand, tally: Counter[str]) -> dict[str, Any]:
    requested, allocated = tally["units_requested"], tally["units_allocated"]
    return {
        "lines": len(demand.lines),
        "products": len(demand.products),
        "destinations": len(demand.destinations),
        "units_requested": requested,
        "units_allocated": allocated,
        "shortage_units": tally["shortage_units"],
        "tasks": tally["tasks"],
        "fill_rate": round(allocated / requested, 4) if requested else 1.0,
    }


# A run's lines per part (`parts_by_product`). A smaller run is one part; a run of 100,000 lines is ten,
# and each of the nine after the first is planned while PostgreSQL writes the one before.
PART_LINES = 10_000


class _Part(NamedTuple):
    """One part of a run, planned, with the rows and sums its writes need (all computed in a thread)."""

    tasks: tuple[Task, ...]
    explained: list[tuple[Any, ...]]
    reserved: _Reserved
    tally: Counter[str]


async def _plan_and_reserve(
    session: AsyncSession,
    run_id: int,
    demand: OpenDemand,
    stock: list[StockAt],
    options: RunOptions,
    today: date,
    now: datetime,
    progress: _Progress | None,
    max_tasks: int,
) -> tuple[list[_Part], list[tuple[str, list[Task]]]]:
    """Plan the run part by part, writing each part's explanation, reservations and lines' allocated
    units while the next part is planned: PostgreSQL and this process work side by side instead of in
    turn. Returns the parts and the run's pick lists, which are cut while the last part is written (a
    list is a cut of a zone's tasks in walking order: it needs every part's tasks)."""
    pieces = parts_by_product(demand.lines, stock, PART_LINES)
    total, done = len(demand.lines), 0
    planned: list[_Part] = []
    for lines, held in pieces:
        args = (run_id, demand, lines, held, options, today)
        if planned:
            part = await _beside(_write_part(session, planned[-1], now), _plan_part, *args)
        else:
            part = await asyncio.to_thread(_plan_part, *args)
        planned.append(part)
        done += len(lines)
        await _report(progress, "allocating", total, done)
    tasks = [task for part in planned for task in part.tasks]
    lists = await _beside(_write_part(session, planned[-1], now), pick_lists, tasks, max_tasks)
    return planned, lists


def _plan_part(
    run_id: int,
    demand: OpenDemand,
    lines: list[OpenLine],
    stock: list[StockAt],
    options: RunOptions,
    today: date,
) -> _Part:
    plan = _plan(demand, lines, stock, options, today)
    return _Part(
        plan.tasks,
        _explanation_rows(run_id, demand, plan),
        _Reserved.of(lines, plan.tasks),
        _tally(lines, plan),
    )


async def _beside(statements: Awaitable[None], function: Callable[..., _T], *args: Any) -> _T:
    """`function(*args)` in a thread while `statements` run on the connection; both done, its result.

    If the statements fail, the thread's result is dropped (the thread only reads; it ends on its own).
    """
    computing = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        await statements
    except BaseException:
        if not computing.cancel():  # done already: its own failure, if any, is not logged as unretrieved
            computing.exception()
        raise
    return await computing


async def _write_part(session: AsyncSession, part: _Part, now: datetime) -> None:
    """A part's explanation, the stock its tasks set aside, and its lines' allocated units."""
    pg, reserved = await driver(session), part.reserved
    await pg.copy_records_to_table("dispatch_run_lines", columns=_RUN_LINE_COLUMNS, records=part.explained)
    await apply_reserved(session, reserved.by_key, now)  # rows locked by available_stock(lock=True)
    if reserved.line_ids:
        await pg.execute(_ALLOCATE_LINES, int_array(reserved.line_ids), int_array(reserved.line_units), now)


async def _write_tasks(
    session: AsyncSession, run_id: int, site_id: int, lists: list[tuple[str, list[Task]]], now: datetime
) -> None:
    """The run's pick lists and their tasks, in bulk."""
    if not lists:
        return
    pg = await driver(session)
    numbers = [f"{run_id}-{n:03d}" for n in range(1, len(lists) + 1)]
    rows = await pg.fetch(_INSERT_LISTS, numbers, site_id, run_id, [zone for zone, _ in lists], now)
    id_of = {row["number"]: row["id"] for row in rows}
    list_ids = [id_of[number] for number in numbers]
    tasks = await asyncio.to_thread(_task_rows, run_id, list_ids, lists)  # 0.1 s at 100,000 tasks
    await pg.copy_records_to_table("pick_tasks", columns=TASK_COLUMNS, records=tasks)


def _task_rows(
    run_id: int, list_ids: list[int], lists: list[tuple[str, list[Task]]]
) -> list[tuple[Any, ...]]:
    """The rows of `pick_tasks`, each open on its list (`list_ids` in the order of `lists`)."""
    return [
        (run_id, list_id, t.line_id, t.product_id, t.location_id, t.lot_id, t.pick_seq, t.units, 0, 0, "open")
        for list_id, (_zone, tasks) in zip(list_ids, lists, strict=True)
        for t in tasks
    ]


class _Reserved(NamedTuple):
    """What a run's tasks set aside: units per balance and per order line, and the orders they touch."""

    by_key: list[tuple[tuple[int, int, int], int]]  # StockKey.sort_key() → units, in that order
    line_ids: list[int]
    line_units: list[int]
    order_ids: list[int]

    @classmethod
    def of(cls, lines: Sequence[OpenLine], tasks: Sequence[Task]) -> _Reserved:
        by_key: dict[tuple[int, int, int], int] = {}
        by_line: dict[int, int] = {}
        for t in tasks:
            key = StockKey.order_of(t.product_id, t.location_id, t.lot_id)
            by_key[key] = by_key.get(key, 0) + t.units
            by_line[t.line_id] = by_line.get(t.line_id, 0) + t.units
        line_ids = sorted(by_line)
        return cls(
            sorted(by_key.items()),
            line_ids,
            [by_line[i] for i in line_ids],
            sorted({line.order_id for line in lines if line.line_id in by_line}),
        )


def _explanation_rows(run_id: int, demand: OpenDemand, plan: Plan) -> list[tuple[Any, ...]]:
    """In key order (product, then destination): the primary key's index then grows at its right edge
    instead of taking each row at a random place (about 0.15 s less for 100,000 rows)."""
    sku_to_id, code_to_id = demand.product_id_by_sku, demand.destination_id_by_code
    rows: list[tuple[Any, ...]] = []
    # Ids are unique within each sort, so the allocations and lines themselves are never compared.
    for product_id, allocation in sorted((sku_to_id[a.supply.product], a) for a in plan.allocations):
        rows.extend(
            [
                (run_id, product_id, destination_id, *explanation_fields(line))
                for destination_id, line in sorted(
                    (code_to_id[line.demand.destination_code], line) for line in allocation.lines
                )
            ]
        )
    return rows


def explanation_fields(line: Explanation) -> tuple[Any, ...]:
    """What a run stores and shows of one destination's share: limits, exact quota, packs, reason."""
    demand = line.demand
    return (
        demand.tier,
        demand.need_units,
        demand.min_units,
        demand.max_units,
        line.pack_size,
        line.quota_numerator,
        line.quota_denominator,
        line.packs,
        line.eaches,
        line.units,
        line.reason.value,
    )


def pick_lists(tasks: tuple[Task, ...] | list[Task], max_tasks: int) -> list[tuple[str, list[Task]]]:
    """Tasks per zone, in walking order, cut into lists of at most `max_tasks`."""
    ordered = sorted(tasks, key=lambda t: (t.zone, t.pick_seq, t.location_id, t.product_id, t.lot_id or 0))
    lists: list[tuple[str, list[Task]]] = []
    for zone, group in groupby(ordered, key=lambda t: t.zone):
        members = list(group)
        lists.extend((zone, members[i : i + max_tasks]) for i in range(0, len(members), max_tasks))
    return lists


async def _site_today(pg: Any, site_id: int, now: datetime) -> date:
    """The date at the site (expiry dates are local): a lot is good through its expiry day there."""
    zone = await pg.fetchval("SELECT timezone FROM sites WHERE id = $1", site_id)
    if zone is None:
        raise NotFound("Unknown site.")
    return now.astimezone(ZoneInfo(zone)).date()


class _Progress:
    """Progress of a queued run, written on a connection of its own so the page sees it before commit."""

    def __init__(self, engine: AsyncEngine, run_id: int) -> None:
        self.engine, self.run_id = engine, run_id

    async def __call__(self, phase: str, total: int | None, done: int | None) -> None:
        """The run's phase, its number of lines and how many are planned (None: unchanged)."""
        async with self.engine.connect() as connection:
            await connection.execute(
                text(
                    "UPDATE dispatch_runs SET phase = CAST(:phase AS text), status = 'running', "
                    "progress_total = coalesce(CAST(:total AS integer), progress_total), "
                    "progress_done = coalesce(CAST(:done AS integer), progress_done) WHERE id = :id"
                ),
                {"phase": phase, "total": total, "done": done, "id": self.run_id},
            )
            await connection.commit()

    async def fail(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(
                text("UPDATE dispatch_runs SET status = 'failed', phase = 'failed' WHERE id = :id"),
                {"id": self.run_id},
            )
            await connection.commit()


async def _report(
    progress: _Progress | None, phase: str, total: int | None = None, done: int | None = None
) -> None:
    if progress is not None:
        await progress(phase, total, done)


_SITE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('dispatch-run:' || $1::bigint, 0))"
_INSERT_RUN = """
    INSERT INTO dispatch_runs (site_id, policy, rounding, spill, status, inputs_hash, phase, progress_done,
                               progress_total, summary, created_by, created_at, updated_at, due_by)
    VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $9, '{}'::jsonb, $7, $8, $8, $10)
    RETURNING id
"""
_QUEUED_RUN = """
    SELECT id, site_id, policy, rounding, spill, inputs_hash, due_by FROM dispatch_runs
    WHERE id = $1 AND status IN ('queued', 'running')
"""
_FINISH = """
    UPDATE dispatch_runs SET status = $2, phase = $2, summary = $3::jsonb, error = $4::jsonb,
           progress_done = progress_total, finished_at = $5, updated_at = $5
    WHERE id = $1
"""
_RUN_LINE_COLUMNS = [
    "run_id",
    "product_id",
    "destination_id",
    "tier",
    "need_units",
    "min_units",
    "max_units",
    "pack_size",
    "quota_numerator",
    "quota_denominator",
    "packs",
    "eaches",
    "units",
    "reason",
]
_INSERT_LISTS = """
    INSERT INTO pick_lists (number, site_id, run_id, zone, status, created_at, updated_at)
    SELECT n, $2, $3, z, 'open', $5, $5 FROM unnest($1::text[], $4::text[]) AS k(n, z)
    RETURNING id, number
"""
TASK_COLUMNS = [
    "run_id",
    "pick_list_id",
    "order_line_id",
    "product_id",
    "location_id",
    "lot_id",
    "pick_seq",
    "quantity",
    "picked",
    "short",
    "status",
]
_ALLOCATE_LINES = """
    UPDATE dispatch_order_lines l SET allocated = l.allocated + k.units, updated_at = $3
    FROM unnest($1::text::bigint[], $2::text::int[]) AS k(id, units) WHERE l.id = k.id
"""
