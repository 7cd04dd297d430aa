"""A dispatched day at LYS for picking and shipment tests: orders, stock, a committed dispatch run.

Store MAG-A ordered 20 flour (pack 10) and 12 yoghurts (pack 12, lot and expiry); flour waits at
A-01-01 (zone A), yoghurts of lot L1 at B-01-01 (zone B). The run reserves both lines in full, in two
pick lists, one per zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, text

from app.db.models import PickList, PickTask, User
from app.services.dispatch_runs import RunOptions, start_dispatch_run
from app.services.picking import take_pick_list
from app.services.stock import Actor
from tests.conftest import PERSONAS
from tests.integration.dispatch_fixtures import ACTOR, NOW, Dest, make_destinations, make_order, receive
from tests.integration.stock_fixtures import make_catalog

YOG_EXPIRY = date(2027, 1, 31)
PICK_TIME = NOW + timedelta(hours=1)  # the day's picking, an hour after its dispatch run


@dataclass(frozen=True)
class Day:
    site_id: int
    destination_id: int
    order_id: int
    flour_task: int
    yog_task: int
    flour_list: int
    yog_list: int


async def run_dispatch(db, site_id: int) -> dict:
    status, answer = await start_dispatch_run(
        db,
        site_id,
        RunOptions(),
        expected_inputs=None,
        actor=ACTOR,
        idempotency_key=uuid.uuid4().hex,
        now=NOW,
        inline_max_lines=2000,
        pick_list_max_tasks=40,
    )
    assert status == 201, answer
    return answer


async def dispatched_day(db) -> Day:
    site_id = (await make_catalog(db)).site_id
    ids = await make_destinations(db, Dest("MAG-A", 1))
    order_id = await make_order(db, site_id, ids["MAG-A"], [("SKU-FLOUR", 20), ("SKU-YOG", 12)], priority=1)
    await receive(db, site_id, "SKU-FLOUR", 30, "A-01-01")
    await receive(db, site_id, "SKU-YOG", 24, "B-01-01", lot="L1", expiry=YOG_EXPIRY)
    await run_dispatch(db, site_id)
    tasks = await tasks_by_sku(db)
    return Day(
        site_id,
        ids["MAG-A"],
        order_id,
        tasks["SKU-FLOUR"][0],
        tasks["SKU-YOG"][0],
        tasks["SKU-FLOUR"][1],
        tasks["SKU-YOG"][1],
    )


async def tasks_by_sku(db) -> dict[str, tuple[int, int]]:
    """(task id, list id) of each product's open task."""
    async with db.sessions() as s:
        rows = await s.execute(
            text("""SELECT p.sku, t.id, t.pick_list_id
                    FROM pick_tasks t JOIN products p ON p.id = t.product_id
                    WHERE t.status = 'open' ORDER BY t.id""")
        )
        return {sku: (task, pick_list) for sku, task, pick_list in rows}


async def persona_actor(db, role: str) -> tuple[Actor, str]:
    """The persona as a service actor (its own idempotency scope), and its full name."""
    persona = PERSONAS[role]
    async with db.sessions() as s:
        user_id = await s.scalar(select(User.id).where(User.username == persona.username))
    return Actor(user_id=user_id, scope=str(user_id)), persona.full_name


async def take(
    db, list_id: int, role: str = "operator", key: str | None = None, now: datetime = PICK_TIME
) -> tuple[int, dict]:
    """The persona takes the list, as the pick-lists screen does."""
    actor, name = await persona_actor(db, role)
    return await take_pick_list(
        db,
        list_id,
        site_ids=None,
        actor=actor,
        actor_name=name,
        idempotency_key=key or uuid.uuid4().hex,
        now=now,
    )


async def task_row(db, task_id: int) -> PickTask:
    async with db.sessions() as s:
        task = await s.get(PickTask, task_id)
        assert task is not None
        return task


async def list_row(db, list_id: int) -> PickList:
    async with db.sessions() as s:
        row = await s.get(PickList, list_id)
        assert row is not None
        return row


async def line_figures(db, order_id: int) -> dict[str, tuple[int, int, int, int, int]]:
    """Per SKU: (quantity, allocated, picked, shipped, short_picked) of the order's lines."""
    async with db.sessions() as s:
        rows = await s.execute(
            text("""SELECT p.sku, l.quantity, l.allocated, l.picked, l.shipped, l.short_picked
                    FROM dispatch_order_lines l JOIN products p ON p.id = l.product_id
                    WHERE l.order_id = :o"""),
            {"o": order_id},
        )
        return {sku: tuple(figures) for sku, *figures in rows}  # type: ignore[misc]


async def order_state(db, order_id: int) -> str:
    async with db.sessions() as s:
        return str(await s.scalar(text("SELECT state FROM dispatch_orders WHERE id = :o"), {"o": order_id}))


async def balance(db, sku: str, location: str) -> tuple[int, int]:
    """(on hand, reserved) of a product at a LYS location, all lots together."""
    async with db.sessions() as s:
        row = (
            await s.execute(
                text("""SELECT coalesce(sum(b.on_hand), 0), coalesce(sum(b.reserved), 0) FROM stock_balances b
                        JOIN products p ON p.id = b.product_id JOIN locations l ON l.id = b.location_id
                        WHERE p.sku = :sku AND l.code = :loc
                          AND l.site_id = (SELECT id FROM sites WHERE code = 'LYS')"""),
                {"sku": sku, "loc": location},
            )
        ).one()
        return int(row[0]), int(row[1])
