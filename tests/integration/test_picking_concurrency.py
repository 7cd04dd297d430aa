"""Pickers, stock movers and shipments at once on the same balance keys, on real PostgreSQL.

Four operators confirm every task of their lists (some short, some with nothing found); each
confirmation is sent twice at the same time with the same idempotency key. Meanwhile other tasks
move free stock in and out of the very locations being picked. Afterwards: the ledger equals the
balances, nothing is negative, every reservation is an open task, every task was applied once.
Then every destination's shipment is closed, twice at once, and the same holds.
"""

import asyncio
import random
import uuid
from dataclasses import replace

from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.domain.ledger import MovementKind as K
from app.services.dispatch_runs import RunOptions, start_dispatch_run
from app.services.errors import Refused
from app.services.picking import PickConfirmation, confirm_pick
from app.services.shipments import ShipmentRequest, close_shipment
from app.services.stock import Actor, StockChange, record_stock_change
from tests.integration.dispatch_fixtures import ACTOR, NOW, Dest, make_destinations, make_order, receive
from tests.integration.picking_fixtures import persona_actor
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog

DESTINATIONS = [f"M{n:02d}" for n in range(1, 13)]
PICKERS = ["operator", "supervisor", "admin", "lille_operator"]
LOCATIONS = ["A-01-01", "A-01-02", "B-01-01"]
MOVERS = 6
MOVES_PER_MOVER = 40


async def test_concurrent_picks_moves_and_shipments_keep_every_invariant(db_urls, test_settings, db):
    site_id = (await make_catalog(db)).site_id
    ids = await make_destinations(db, *[Dest(code, 1) for code in DESTINATIONS])
    for n, code in enumerate(DESTINATIONS):
        await make_order(
            db, site_id, ids[code], [("SKU-FLOUR", 20 + 10 * (n % 3)), ("SKU-WATER", 12)], priority=1
        )
    for location in LOCATIONS:
        await receive(db, site_id, "SKU-FLOUR", 150, location)
        await receive(db, site_id, "SKU-WATER", 60, location)
    status, _answer = await start_dispatch_run(
        db, site_id, RunOptions(), expected_inputs=None, actor=ACTOR, idempotency_key="run",
        now=NOW, inline_max_lines=2000, pick_list_max_tasks=4,
    )  # fmt: skip
    assert status == 201
    async with db.sessions() as s:
        tasks = (await s.execute(text("SELECT id, pick_list_id, quantity FROM pick_tasks ORDER BY id"))).all()
        locations = dict(
            (await s.execute(text("SELECT id, code FROM locations WHERE site_id = :s"), {"s": site_id})).all()
        )
        task_places = dict(
            (
                await s.execute(
                    text("""SELECT t.id, t.location_id || ':' || p.sku FROM pick_tasks t
                            JOIN products p ON p.id = t.product_id""")
                )
            ).all()
        )
    lists = sorted({t.pick_list_id for t in tasks})
    assert len(lists) >= 4 and len(tasks) >= 24
    await assert_stock_invariants(db)

    settings = replace(test_settings.database, pool_size=24, max_overflow=24)
    busy_db = Database(sqlalchemy_config(db_urls, settings, application_name="test-picking-concurrency"))
    confirmed: dict[int, dict] = {}

    async def picker(number: int) -> None:
        actor, _name = await persona_actor(db, PICKERS[number])
        rng = random.Random(number)
        mine = [t for t in tasks if lists.index(t.pick_list_id) % len(PICKERS) == number]
        for task in mine:
            location_id, sku = task_places[task.id].split(":")
            picked = rng.choice([task.quantity, task.quantity, task.quantity, rng.randint(0, task.quantity)])
            confirmation = PickConfirmation(locations[int(location_id)], sku, None, picked)
            key = f"pick-{task.id}"
            answers = await asyncio.gather(
                *[
                    confirm_pick(
                        busy_db,
                        task.id,
                        confirmation,
                        site_ids=None,
                        actor=actor,
                        idempotency_key=key,
                        now=NOW,
                    )
                    for _ in "ab"
                ]
            )
            assert answers[0] == answers[1], "both copies get the same answer"
            confirmed[task.id] = answers[0][1]

    async def mover(number: int) -> None:
        rng = random.Random(100 + number)
        actor = Actor(user_id=None, scope=f"mover-{number}")
        for n in range(MOVES_PER_MOVER):
            sku = rng.choice(["SKU-FLOUR", "SKU-WATER"])
            source, target = rng.sample(LOCATIONS, 2)
            change = (
                StockChange(K.TRANSFER, site_id, sku, rng.randint(1, 40), source=source, target=target)
                if rng.random() < 0.7
                else StockChange(K.RECEIPT, site_id, sku, rng.randint(1, 10), target=source)
            )
            try:
                await record_stock_change(
                    busy_db, change, actor=actor, idempotency_key=f"move-{number}-{n}", now=NOW
                )
            except Refused as refusal:
                refusals.append(refusal.status)  # reserved stock is never moved away: 409

    refusals: list[int] = []
    try:
        await asyncio.gather(*[picker(i) for i in range(len(PICKERS))], *[mover(i) for i in range(MOVERS)])
        assert set(refusals) <= {409}
        await assert_stock_invariants(db)
        assert sorted(confirmed) == [t.id for t in tasks]
        async with db.sessions() as s:
            per_task = (await s.execute(text("SELECT picked, short, quantity FROM pick_tasks"))).all()
            open_lists = await s.scalar(text("SELECT count(*) FROM pick_lists WHERE status <> 'done'"))
        assert open_lists == 0
        assert all(picked + short == quantity for picked, short, quantity in per_task)
        # Per list and key, the pick movements add up to what its tasks picked: none applied twice.
        async with db.sessions() as s:
            unequal = (
                await s.execute(
                    text("""SELECT pl.number, t.product_id, t.location_id FROM pick_tasks t
                            JOIN pick_lists pl ON pl.id = t.pick_list_id
                            GROUP BY pl.number, t.product_id, t.location_id
                            HAVING sum(t.picked) <> coalesce((
                                SELECT sum(m.quantity) FROM stock_movements m
                                WHERE m.kind = 'pick' AND m.document = pl.number
                                  AND m.product_id = t.product_id
                                  AND m.from_location_id = t.location_id), 0)""")
                )
            ).all()
        assert unequal == []

        async def shipper(code: str) -> None:
            request = ShipmentRequest(site_id, code, 1)
            key = f"ship-{code}-{uuid.uuid4().hex[:6]}"
            answers = await asyncio.gather(
                *[close_shipment(busy_db, request, actor=ACTOR, idempotency_key=key, now=NOW) for _ in "ab"],
                return_exceptions=True,
            )
            if isinstance(answers[0], Refused):  # everything of that store was found missing
                assert isinstance(answers[1], Refused)
                return
            assert answers[0] == answers[1]

        await asyncio.gather(*[shipper(code) for code in DESTINATIONS])
    finally:
        await busy_db.dispose()
    await assert_stock_invariants(db)
    async with db.sessions() as s:
        at_dock = await s.scalar(
            text("""SELECT coalesce(sum(b.on_hand), 0) FROM stock_balances b
                    JOIN locations l ON l.id = b.location_id WHERE l.code = 'QUAI-E1'""")
        )
        shipped = await s.scalar(text("SELECT coalesce(sum(quantity), 0) FROM shipment_lines"))
        picked = await s.scalar(text("SELECT coalesce(sum(picked), 0) FROM pick_tasks"))
    assert at_dock == 0 and shipped == picked
