"""Dispatch runs on real PostgreSQL: the worked example reserved for real, previews that write nothing,
stale previews refused, replays, two commits at once, large runs on the worker."""

import asyncio
import threading
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.db.models import DispatchRun, DispatchRunLine, JobRequest, PickList, PickTask
from app.domain.allocation import Policy
from app.services.dispatch_runs import (
    JOB,
    NothingToAllocate,
    RunOptions,
    StaleInputs,
    pick_lists,
    preview_dispatch_run,
    start_dispatch_run,
)
from app.services.jobs import JOB_BODIES, run_request
from tests.helpers import threads_running
from tests.integration.dispatch_fixtures import (
    ACTOR,
    NOW,
    Dest,
    make_destinations,
    make_order,
    make_worked_example,
    receive,
)
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog


@pytest.fixture
async def site(db):
    return (await make_catalog(db)).site_id


async def start(db, site, options=None, *, expected=None, key=None, inline_max_lines=2000):
    return await start_dispatch_run(
        db,
        site,
        options or RunOptions(),
        expected_inputs=expected,
        actor=ACTOR,
        idempotency_key=key or uuid.uuid4().hex,
        now=NOW,
        inline_max_lines=inline_max_lines,
        pick_list_max_tasks=40,
    )


@pytest.fixture
async def worked_example(db, site):
    """PRODUCT.md's acceptance case: 120 units, packs of 6; A tier 1; B, C, D tier 2 (1-pack minimums)."""
    return await make_worked_example(db, site)


async def reserved_units_by_destination(db) -> dict[str, int]:
    async with db.sessions() as s:
        rows = await s.execute(
            text("""
            SELECT d.code, sum(t.quantity) FROM pick_tasks t
            JOIN dispatch_order_lines l ON l.id = t.order_line_id
            JOIN dispatch_orders o ON o.id = l.order_id JOIN destinations d ON d.id = o.destination_id
            WHERE t.status = 'open' GROUP BY d.code""")
        )
        return dict(rows.all())


async def test_the_worked_example_is_reserved_pack_for_pack(db, site, worked_example):
    status, answer = await start(db, site)
    assert status == 201 and answer["status"] == "committed"
    # A 4, B 6, C 8, D 2 packs of 6.
    assert await reserved_units_by_destination(db) == {"A": 24, "B": 36, "C": 48, "D": 12}
    summary = answer["summary"]
    assert (summary["units_requested"], summary["units_allocated"]) == (149, 120)
    async with db.sessions() as s:
        reasons = dict(
            (
                await s.execute(
                    text("""SELECT d.code, r.reason FROM dispatch_run_lines r
                            JOIN destinations d ON d.id = r.destination_id""")
                )
            ).all()
        )
        states = set((await s.scalars(text("SELECT state FROM dispatch_orders"))).all())
        reserved = await s.scalar(text("SELECT sum(reserved) FROM stock_balances"))
    assert reasons == {
        "A": "served_in_full",
        "B": "remainder_plus_one",
        "C": "remainder_plus_one",
        "D": "proportional_share",
    }
    assert states == {"allocated"}
    assert reserved == 120
    await assert_stock_invariants(db)


async def test_a_products_safety_stock_is_left_unreserved(db, site, worked_example):
    async with db.transaction() as s:  # 120 units at the site; 30 of them kept back: 90 to share, 15 packs
        await s.execute(text("UPDATE products SET holdback_units = 30 WHERE sku = 'SKU-WATER'"))
    status, answer = await start(db, site)
    assert status == 201 and answer["summary"]["units_allocated"] == 90
    async with db.sessions() as s:
        reserved, on_hand = (
            await s.execute(text("SELECT sum(reserved), sum(on_hand) FROM stock_balances"))
        ).one()
    assert on_hand - reserved == 30
    await assert_stock_invariants(db)


async def test_minimums_first_gives_the_other_split_of_the_worked_example(db, site, worked_example):
    await start(db, site, RunOptions(policy=Policy.MINIMUMS_FIRST))
    assert await reserved_units_by_destination(db) == {"A": 24, "B": 36, "C": 42, "D": 18}


async def test_a_preview_writes_nothing_and_matches_the_commit(db, site, worked_example):
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    assert {t.units for t in preview.plan.tasks} and preview.plan.units_allocated == 120
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 0
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 0
    _status, answer = await start(db, site, expected=preview.inputs)
    assert answer["summary"] == {**preview.summary(), "pick_lists": answer["summary"]["pick_lists"]}


async def test_a_commit_on_inputs_changed_since_the_preview_is_refused_and_writes_nothing(
    db, site, worked_example
):
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    await receive(db, site, "SKU-WATER", 6, "A-01-03")  # stock arrived since
    with pytest.raises(StaleInputs):
        await start(db, site, expected=preview.inputs)
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 0
        assert await s.scalar(select(func.count()).select_from(PickTask)) == 0
    fresh = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    status, _ = await start(db, site, expected=fresh.inputs)
    assert status == 201


async def test_a_replayed_commit_returns_the_first_answer_and_reserves_once(db, site, worked_example):
    first = await start(db, site, key="run-1")
    again = await start(db, site, key="run-1")
    assert again == first
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 1
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 120


async def test_two_commits_of_one_site_at_once_never_both_apply(db, site, worked_example):
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    outcomes = await asyncio.gather(
        start(db, site, expected=preview.inputs),
        start(db, site, expected=preview.inputs),
        return_exceptions=True,
    )
    committed = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, StaleInputs)]
    assert len(committed) == 1 and len(refused) == 1  # the second waited for the first, then saw new inputs
    assert await reserved_units_by_destination(db) == {"A": 24, "B": 36, "C": 48, "D": 12}
    await assert_stock_invariants(db)


async def test_a_second_run_allocates_only_what_is_still_needed(db, site, worked_example):
    await start(db, site)
    await receive(db, site, "SKU-WATER", 60, "B-01-01")
    _status, answer = await start(db, site)
    # 29 units were short; 60 more arrived: every destination now gets its need (round-up kept).
    assert answer["summary"]["units_requested"] == 29
    assert await reserved_units_by_destination(db) == {"A": 24, "B": 48, "C": 60, "D": 24}
    await assert_stock_invariants(db)


async def test_no_open_demand_is_refused(db, site):
    with pytest.raises(NothingToAllocate):
        await start(db, site)


async def test_draft_and_cancelled_orders_are_not_allocated(db, site):
    ids = await make_destinations(db, Dest("A", 1), Dest("B", 1))
    await make_order(db, site, ids["A"], [("SKU-WATER", 12)], priority=1, state="draft")
    await make_order(db, site, ids["B"], [("SKU-WATER", 12)], priority=1, state="cancelled")
    await receive(db, site, "SKU-WATER", 60, "A-01-01")
    with pytest.raises(NothingToAllocate):
        await start(db, site)


async def test_expired_lots_are_never_reserved_and_the_first_to_expire_goes_first(db, site):
    ids = await make_destinations(db, Dest("A", 1))
    await make_order(db, site, ids["A"], [("SKU-YOG", 24)], priority=1)
    await receive(db, site, "SKU-YOG", 24, "A-01-01", lot="OLD", expiry=date(2026, 11, 20))  # expired
    await receive(db, site, "SKU-YOG", 12, "A-01-02", lot="SOON", expiry=date(2026, 12, 1))
    await receive(db, site, "SKU-YOG", 24, "A-01-03", lot="LATE", expiry=date(2027, 1, 15))
    await start(db, site)
    async with db.sessions() as s:
        rows = (
            await s.execute(
                text("""SELECT lot.code, sum(t.quantity) FROM pick_tasks t JOIN lots lot ON lot.id = t.lot_id
                        GROUP BY lot.code""")
            )
        ).all()
    assert dict(rows) == {"SOON": 12, "LATE": 12}
    await assert_stock_invariants(db)


async def test_a_large_run_is_queued_and_committed_by_the_worker_with_its_progress(db, site, worked_example):
    status, answer = await start(db, site, inline_max_lines=1)
    assert status == 202 and answer["status"] == "queued"
    async with db.sessions() as s:
        request = await s.scalar(select(JobRequest).where(JobRequest.function == JOB))
        run = await s.get(DispatchRun, answer["run_id"])
    assert run.status == "queued" and run.progress_total == 4
    result = await run_request(db, request.id, JOB_BODIES, worker_id="w1", now=NOW)
    assert result["tasks"] >= 4
    async with db.sessions() as s:
        run = await s.get(DispatchRun, answer["run_id"])
        explained = await s.scalar(select(func.count()).select_from(DispatchRunLine))
        lists = await s.scalar(select(func.count()).select_from(PickList))
    assert (run.status, run.phase, run.progress_done) == ("committed", "committed", 4)
    assert run.summary["units_allocated"] == 120 and explained == 4 and lists >= 1
    await assert_stock_invariants(db)


@pytest.mark.parametrize("queued", [False, True])
async def test_a_run_cut_off_at_a_due_time_leaves_later_orders_out(db, site, queued):
    """Today's order and tomorrow's want the same short stock: cut off tonight, today's gets it all."""
    ids = await make_destinations(db, Dest("TODAY", 2), Dest("LATER", 2))
    today = await make_order(
        db, site, ids["TODAY"], [("SKU-WATER", 30)], priority=2, due=NOW + timedelta(hours=6)
    )
    later = await make_order(
        db, site, ids["LATER"], [("SKU-WATER", 30)], priority=2, due=NOW + timedelta(days=1)
    )
    await receive(db, site, "SKU-WATER", 30, "A-01-01")
    cut_off = RunOptions(due_by=NOW + timedelta(hours=12))
    preview = await preview_dispatch_run(db, site, cut_off, now=NOW)
    assert [line.order_id for line in preview.demand.lines] == [today]
    # (The worker's clock is the database's, not the test's NOW: a queued commit confirms no preview here.)
    expected, limit = (None, 0) if queued else (preview.inputs, 2000)
    status, answer = await start(db, site, cut_off, expected=expected, inline_max_lines=limit)
    if queued:
        assert status == 202
        async with db.sessions() as s:
            request = await s.scalar(select(JobRequest).where(JobRequest.function == JOB))
        await run_request(db, request.id, JOB_BODIES, worker_id="w1", now=NOW)
    async with db.sessions() as s:
        run = await s.get(DispatchRun, answer["run_id"])
        states = dict((await s.execute(text("SELECT id, state FROM dispatch_orders"))).all())
    assert (run.status, run.error, run.due_by) == ("committed", None, NOW + timedelta(hours=12))
    assert run.summary["lines"] == 1
    assert states == {today: "allocated", later: "released"}  # tomorrow's waits, with nothing of today's
    # Without the cut-off, the next run shares what is left (nothing) with tomorrow's order.
    assert (await preview_dispatch_run(db, site, RunOptions(), now=NOW)).summary()["lines"] == 1
    await assert_stock_invariants(db)


async def make_four_products_demand(db, site):
    """Three destinations ordering the four products, two lines per order; stock short on most."""
    ids = await make_destinations(db, Dest("N1", 1), Dest("N2", 2, min_units=12), Dest("N3", 2, max_units=30))
    for sku, needs in (
        ("SKU-WATER", (24, 45, 60)),
        ("SKU-YOG", (30, 18, 50)),
        ("SKU-GLOVE", (15, 25, 40)),
        ("SKU-FLOUR", (12, 35, 9)),
    ):
        for code, need in zip(("N1", "N2", "N3"), needs, strict=True):
            await make_order(db, site, ids[code], [(sku, need), (sku, 3)], priority=1 if code == "N1" else 2)
    for sku, units, location in (
        ("SKU-WATER", 72, "A-01-01"),
        ("SKU-WATER", 30, "B-01-01"),
        ("SKU-FLOUR", 50, "B-01-01"),
    ):
        await receive(db, site, sku, units, location)
    await receive(db, site, "SKU-GLOVE", 40, "A-01-02", lot="G1")
    await receive(db, site, "SKU-YOG", 36, "A-01-03", lot="Y1", expiry=date(2026, 12, 20))
    await receive(db, site, "SKU-YOG", 24, "B-01-01", lot="Y2", expiry=date(2026, 12, 10))


async def test_a_run_committed_part_by_part_writes_the_plan_of_the_whole(db, site, monkeypatch):
    """A large run is planned and written in parts of whole products (PART_LINES lines each); here every
    product is a part of its own, through the worker, and what it writes is what the preview planned at
    once: tasks, pick lists cut across the parts, explanation, reservations and lines' allocations."""
    from app.services import dispatch_runs

    await make_four_products_demand(db, site)
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    monkeypatch.setattr(dispatch_runs, "PART_LINES", 1)
    reports = []
    report = dispatch_runs._Progress.__call__

    async def recorded(self, phase, total, done):
        reports.append((phase, total, done))
        await report(self, phase, total, done)

    monkeypatch.setattr(dispatch_runs._Progress, "__call__", recorded)
    _status, answer = await start_dispatch_run(
        db,
        site,
        RunOptions(),
        expected_inputs=None,  # the worker's clock is today's, not NOW: the digest would differ by the date
        actor=ACTOR,
        idempotency_key=uuid.uuid4().hex,
        now=NOW,
        inline_max_lines=0,
        pick_list_max_tasks=2,
    )
    async with db.sessions() as s:
        request_id = await s.scalar(select(JobRequest.id).where(JobRequest.function == JOB))
    assert (await run_request(db, request_id, JOB_BODIES, worker_id="w1", now=NOW))["tasks"] > 8

    planned = preview.plan.tasks
    lists = pick_lists(planned, 2)
    async with db.sessions() as s:
        run = await s.get(DispatchRun, answer["run_id"])
        written = (
            await s.execute(
                text("""SELECT l.zone, t.order_line_id, t.product_id, t.location_id, t.lot_id, t.quantity
                        FROM pick_tasks t JOIN pick_lists l ON l.id = t.pick_list_id
                        ORDER BY l.number, t.id""")
            )
        ).all()
        explained = (
            await s.execute(text("SELECT product_id, destination_id, units, reason FROM dispatch_run_lines"))
        ).all()
        allocated = dict((await s.execute(text("SELECT id, allocated FROM dispatch_order_lines"))).all())
    assert run.status == "committed" and run.summary == {**preview.summary(), "pick_lists": len(lists)}
    assert [tuple(row) for row in written] == [
        (zone, t.line_id, t.product_id, t.location_id, t.lot_id, t.units)
        for zone, tasks in lists
        for t in tasks
    ]
    sku_to_id, code_to_id = preview.demand.product_id_by_sku, preview.demand.destination_id_by_code
    assert sorted(tuple(row) for row in explained) == sorted(
        (sku_to_id[a.supply.product], code_to_id[line.destination_code], line.units, line.reason.value)
        for a in preview.plan.allocations
        for line in a.lines
    )
    per_line = Counter()
    for t in planned:
        per_line[t.line_id] += t.units
    assert {line_id: units for line_id, units in allocated.items() if units} == per_line
    allocating = [done for phase, total, done in reports if phase == "allocating"]
    lines = len(preview.demand.lines)
    assert len(allocating) == 5 and allocating == sorted(set(allocating))  # once before, once per product
    assert (allocating[0], allocating[-1]) == (0, lines)
    assert reports[-1] == ("writing", lines, lines)
    await assert_stock_invariants(db)


async def test_a_run_that_fails_in_a_later_part_writes_nothing(db, site, monkeypatch):
    """Parts are written in the run's one transaction: a failure in the third part undoes the first two."""
    from app.services import dispatch_runs

    await make_four_products_demand(db, site)
    monkeypatch.setattr(dispatch_runs, "PART_LINES", 1)
    apply = dispatch_runs.apply_reserved
    calls = []

    async def failing_third(session, changes, now):
        calls.append(changes)
        if len(calls) == 3:
            await session.execute(text("SELECT 1 / 0"))
        await apply(session, changes, now)

    monkeypatch.setattr(dispatch_runs, "apply_reserved", failing_third)
    with pytest.raises(DBAPIError, match="division by zero"):
        await start(db, site)
    assert len(calls) == 3
    async with db.sessions() as s:
        assert (await s.execute(text(_ROW_COUNTS))).one()[:4] == (0, 0, 0, 0)
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 0
        assert await s.scalar(text("SELECT sum(allocated) FROM dispatch_order_lines")) == 0
    await assert_stock_invariants(db)


async def test_a_queued_run_whose_inputs_changed_is_recorded_as_stale(db, site, worked_example):
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    _status, answer = await start(db, site, expected=preview.inputs, inline_max_lines=0)
    await receive(db, site, "SKU-WATER", 6, "A-01-03")
    async with db.sessions() as s:
        request_id = await s.scalar(select(JobRequest.id).where(JobRequest.function == JOB))
    assert await run_request(db, request_id, JOB_BODIES, worker_id="w1", now=NOW) == {"refused": 1}
    async with db.sessions() as s:
        run = await s.get(DispatchRun, answer["run_id"])
        assert await s.scalar(select(func.count()).select_from(PickTask)) == 0
    assert run.status == "stale" and "preview the run again" in run.error["message"]


def test_pick_lists_follow_the_path_per_zone_and_are_cut_at_the_limit():
    from app.domain.allocation.plan import Task

    tasks = [Task(i, 1, 100 + i, None, "A" if i % 2 else "B", 50 - i, 1) for i in range(10)]
    lists = pick_lists(tasks, 3)
    assert [(zone, len(members)) for zone, members in lists] == [("A", 3), ("A", 2), ("B", 3), ("B", 2)]
    for _zone, members in lists:
        assert [t.pick_seq for t in members] == sorted(t.pick_seq for t in members)


async def test_an_order_cancelled_while_a_run_commits_never_keeps_a_reservation(db, site):
    """A cancel waits for the site's run in flight (or the run for it): no task left on a cancelled order."""
    from app.services.orders import cancel_order
    from app.services.users import Actor as JournalActor

    ids = await make_destinations(db, *[Dest(f"X{n}", 1) for n in range(8)])
    await receive(db, site, "SKU-FLOUR", 400, "A-01-01")
    for round_no in range(8):
        order_id = await make_order(db, site, ids[f"X{round_no}"], [("SKU-FLOUR", 20)], priority=1)
        outcomes = await asyncio.gather(
            start(db, site),
            cancel_order(
                db, order_id, actor=JournalActor(None, "test"), idempotency_key=f"cancel-{round_no}", now=NOW
            ),
            return_exceptions=True,
        )
        assert not any(isinstance(o, Exception) and not isinstance(o, NothingToAllocate) for o in outcomes)
        async with db.sessions() as s:
            stranded = await s.scalar(
                text("""SELECT count(*) FROM pick_tasks t
                        JOIN dispatch_order_lines l ON l.id = t.order_line_id
                        JOIN dispatch_orders o ON o.id = l.order_id
                        WHERE o.state = 'cancelled' AND t.status = 'open'""")
            )
        assert stranded == 0
    await assert_stock_invariants(db)


_COPY_TASK = """
    INSERT INTO pick_tasks (run_id, pick_list_id, order_line_id, product_id, location_id, lot_id, pick_seq,
                            quantity, picked, short, status)
    SELECT run_id, {list}, {line}, product_id, location_id, lot_id, pick_seq, quantity, 0, 0, 'open'
    FROM pick_tasks
"""
# A missing line among some 20,000 rows: a statement that large is checked by one hash anti-join.
_COPY_MANY_TASKS = """
    INSERT INTO pick_tasks (run_id, pick_list_id, order_line_id, product_id, location_id, lot_id, pick_seq,
                            quantity, picked, short, status)
    SELECT run_id, pick_list_id, CASE WHEN n = 4321 THEN -7 ELSE order_line_id END, product_id,
           location_id, lot_id, pick_seq, quantity, 0, 0, 'open'
    FROM pick_tasks, generate_series(1, 5000) AS n
"""
_COPY_EXPLANATION = """
    INSERT INTO dispatch_run_lines
    SELECT {run}, product_id, destination_id + 1000, tier, need_units, min_units, max_units, pack_size,
           quota_numerator, quota_denominator, packs, eaches, units, reason
    FROM dispatch_run_lines
"""


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        # A run's rows name their list, order line and run: checked once per statement, as keys would be.
        (_COPY_TASK.format(list="pick_list_id", line="-1"), "order_line_id -1 is not in dispatch_order_lin"),
        (_COPY_TASK.format(list="-2", line="order_line_id"), "pick_list_id -2 is not in pick_lists"),
        (_COPY_MANY_TASKS, "order_line_id -7 is not in dispatch_order_lines"),
        (_COPY_EXPLANATION.format(run="-3"), "run_id -3 is not in dispatch_runs"),
        # Which holds because what they name is kept for good, under the same id.
        ("DELETE FROM pick_lists", "pick_lists keeps its rows for good"),
        ("DELETE FROM dispatch_orders", "dispatch_order_lines keeps its rows for good"),
        ("TRUNCATE dispatch_runs CASCADE", "dispatch_runs keeps its rows for good"),
        ("UPDATE dispatch_order_lines SET id = -id", "update of dispatch_order_lines refused"),
        ("UPDATE pick_tasks SET pick_list_id = pick_list_id + 1", "update of pick_tasks refused"),
        ("UPDATE dispatch_run_lines SET run_id = run_id + 1", "update of dispatch_run_lines refused"),
    ],
)
async def test_a_runs_rows_never_lose_what_they_name(db, site, worked_example, statement, refusal):
    await start(db, site)
    async with db.sessions() as s:
        before = (await s.execute(text(_ROW_COUNTS))).one()
    with pytest.raises(DBAPIError, match=refusal):
        async with db.transaction() as s:
            await s.execute(text(statement))
    async with db.sessions() as s:
        assert (await s.execute(text(_ROW_COUNTS))).one() == before
        # A statement naming rows that exist still goes through.
        await s.execute(text(_COPY_TASK.format(list="pick_list_id", line="order_line_id")))
        await s.execute(text(_COPY_EXPLANATION.format(run="run_id")))
        await s.execute(text("UPDATE pick_tasks SET pick_list_id = pick_list_id, status = status"))
        await s.rollback()


_ROW_COUNTS = """
    SELECT (SELECT count(*) FROM pick_tasks), (SELECT count(*) FROM pick_lists),
           (SELECT count(*) FROM dispatch_run_lines), (SELECT count(*) FROM dispatch_runs),
           (SELECT count(*) FROM dispatch_order_lines), (SELECT count(*) FROM dispatch_orders)
"""


async def test_the_plan_is_computed_off_the_event_loop(db, site, worked_example, monkeypatch):
    """A large site's plan is seconds of CPU: on the event loop it would freeze every other request and
    live board of the process for as long (3.6 s at 100,000 lines, measured)."""
    from app.services import dispatch_runs

    planned_in = threads_running(monkeypatch, dispatch_runs, "plan_dispatch")
    preview = await preview_dispatch_run(db, site, RunOptions(), now=NOW)
    status, _ = await start(db, site, expected=preview.inputs)
    assert status == 201 and len(planned_in) == 2
    assert threading.get_ident() not in planned_in


def test_what_a_plan_built_skips_the_young_generations():
    """After the collector's pause, the next young collection must not walk everything the plan built
    (0.2-0.3 s holding the interpreter at 100,000 lines): it goes to the oldest generation at once."""
    import gc

    from app.services.collector import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        built = [[n] for n in range(1000)]  # containers, which the collector tracks
    assert gc.isenabled()
    assert not any(o is built for o in gc.get_objects(generation=0))
    assert any(o is built for o in gc.get_objects(generation=2))
    gc.freeze()  # what a pre-fork server does so that workers share their pages: left as it was
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
