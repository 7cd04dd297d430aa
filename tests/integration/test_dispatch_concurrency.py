"""Runs re-allocating while pickers confirm (some short) and goods arrive, on real PostgreSQL.

A first run reserves scarce stock. Then, all at once: pickers confirm every task of that run, each
confirmation sent twice with the same key; a supervisor commits new runs one after another (each takes
back the need short picks gave back, and the stock that arrived); receipts keep arriving. Afterwards no
line is allocated beyond its need, nothing is negative, the ledger equals the balances, and every
reservation is exactly an open task (per balance and per order line).
"""

import asyncio
import contextlib
import random
from dataclasses import replace

from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.services.dispatch_runs import NothingToAllocate, RunOptions, start_dispatch_run
from app.services.picking import PickConfirmation, confirm_pick
from tests.integration.dispatch_fixtures import ACTOR, NOW, Dest, make_destinations, make_order, receive
from tests.integration.picking_fixtures import persona_actor
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog

DESTINATIONS = [f"M{n:02d}" for n in range(1, 9)]
PICKERS = ["operator", "supervisor", "admin"]
RUNS = 6


async def run_once(db, site_id, key):
    return await start_dispatch_run(
        db, site_id, RunOptions(), expected_inputs=None, actor=ACTOR, idempotency_key=key, now=NOW,
        inline_max_lines=2000, pick_list_max_tasks=3,
    )  # fmt: skip


async def test_runs_reallocate_safely_while_pickers_confirm_and_stock_arrives(db_urls, test_settings, db):
    site_id = (await make_catalog(db)).site_id
    ids = await make_destinations(db, *[Dest(code, 1 + n % 2) for n, code in enumerate(DESTINATIONS)])
    for n, code in enumerate(DESTINATIONS):
        await make_order(
            db, site_id, ids[code], [("SKU-FLOUR", 30 + 10 * (n % 3)), ("SKU-GLOVE", 20)], priority=1
        )
    for location in ("A-01-01", "A-01-02"):
        await receive(db, site_id, "SKU-FLOUR", 60, location)
        await receive(db, site_id, "SKU-GLOVE", 40, location, lot=f"G-{location}")
    assert (await run_once(db, site_id, "first"))[0] == 201
    async with db.sessions() as s:
        tasks = (
            await s.execute(
                text("""SELECT t.id, t.pick_list_id, t.quantity, l.code, p.sku, lot.code AS lot
                        FROM pick_tasks t JOIN locations l ON l.id = t.location_id
                        JOIN products p ON p.id = t.product_id
                        LEFT JOIN lots lot ON lot.id = t.lot_id ORDER BY t.pick_list_id, t.id""")
            )
        ).all()
    assert len(tasks) >= 12

    settings = replace(test_settings.database, pool_size=16, max_overflow=16)
    busy = Database(sqlalchemy_config(db_urls, settings, application_name="test-dispatch-concurrency"))

    async def picker(number: int) -> None:
        actor, _name = await persona_actor(db, PICKERS[number])
        rng = random.Random(number)
        lists = sorted({t.pick_list_id for t in tasks})
        mine = [t for t in tasks if lists.index(t.pick_list_id) % len(PICKERS) == number]  # whole lists each
        for task in mine:
            picked = rng.choice([task.quantity, task.quantity, rng.randint(0, task.quantity)])
            confirmation = PickConfirmation(task.code, task.sku, task.lot, picked)
            answers = await asyncio.gather(
                *[
                    confirm_pick(
                        busy,
                        task.id,
                        confirmation,
                        site_ids=None,
                        actor=actor,
                        idempotency_key=f"pick-{task.id}",
                        now=NOW,
                    )
                    for _ in "ab"
                ],
            )
            assert answers[0] == answers[1]  # both copies get the one answer

    async def supervisor() -> None:
        for n in range(RUNS):
            with contextlib.suppress(NothingToAllocate):  # all served already
                await run_once(busy, site_id, f"again-{n}")
            await asyncio.sleep(0.01)

    async def receiving() -> None:
        for n in range(10):
            await receive(busy, site_id, "SKU-FLOUR", 5, "B-01-01")
            await receive(busy, site_id, "SKU-GLOVE", 3, "B-01-01", lot=f"G-NEW-{n % 2}")

    try:
        await asyncio.gather(*[picker(i) for i in range(len(PICKERS))], supervisor(), receiving())
    finally:
        await busy.dispose()
    await assert_stock_invariants(db)
    async with db.sessions() as s:
        over = (
            await s.execute(
                text("SELECT id FROM dispatch_order_lines WHERE allocated + picked + shipped > quantity")
            )
        ).all()
        runs = await s.scalar(text("SELECT count(*) FROM dispatch_runs WHERE status = 'committed'"))
        first_open = await s.scalar(
            text("SELECT count(*) FROM pick_tasks WHERE status = 'open' AND id = ANY(:ids)"),
            {"ids": [t.id for t in tasks]},
        )
    assert over == []  # never allocated beyond need
    assert runs >= 2 and first_open == 0  # runs committed meanwhile; every first task was confirmed once
