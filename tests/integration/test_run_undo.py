"""Undoing a committed run on real PostgreSQL: what nobody is picking goes back to stock, once, and the
next run serves the orders afresh; lists left with nothing to pick are cancelled and leave the screens."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.services.errors import Refused
from app.services.picking import reassign_pick_list, take_pick_list
from app.services.run_undo import NothingToUndo, undo_dispatch_run
from tests.conftest import PERSONAS
from tests.helpers import post_form
from tests.integration.picking_fixtures import (
    PICK_TIME,
    dispatched_day,
    list_row,
    order_state,
    persona_actor,
    run_dispatch,
    take,
)
from tests.integration.stock_fixtures import assert_stock_invariants
from tests.integration.test_operations import sign_in, visible_text
from tests.integration.test_orders import cancel
from tests.integration.test_picking import confirm


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


async def undo(db, run_id, key=None, role="supervisor"):
    actor, name = await persona_actor(db, role)
    return await undo_dispatch_run(
        db, run_id, site_ids=None, actor=actor, actor_name=name, idempotency_key=key or uuid.uuid4().hex,
        now=PICK_TIME,
    )  # fmt: skip


async def first_run(db) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(text("SELECT min(id) FROM dispatch_runs")))


async def reserved(db) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(text("SELECT coalesce(sum(reserved), 0) FROM stock_balances")))


async def test_undoing_a_run_gives_its_stock_back_releases_its_orders_and_cancels_its_lists(db, day):
    run_id = await first_run(db)
    assert await reserved(db) == 32
    status, answer = await undo(db, run_id, key="undo-1")
    assert status == 201
    assert {k: answer[k] for k in ("tasks", "units", "orders", "lists_cancelled", "lists_kept")} == {
        "tasks": 2,
        "units": 32,
        "orders": 1,
        "lists_cancelled": 2,
        "lists_kept": 0,
    }
    assert await reserved(db) == 0 and await order_state(db, day.order_id) == "released"
    assert (
        (await list_row(db, day.flour_list)).status
        == (await list_row(db, day.yog_list)).status
        == "cancelled"
    )
    assert (await undo(db, run_id, key="undo-1"))[1] == answer  # a replay: the first answer, nothing more
    with pytest.raises(NothingToUndo, match="already undone"):
        await undo(db, run_id)
    async with db.sessions() as s:
        stored = await s.scalar(text("SELECT undone FROM dispatch_runs WHERE id = :r"), {"r": run_id})
        journaled = await s.scalar(
            text("SELECT count(*) FROM access_journal WHERE event = 'dispatch_run.undone'")
        )
    assert (stored["tasks"], stored["by"], journaled) == (2, "Samir Superviseur", 1)
    # The next run serves the order afresh, from the stock given back.
    await run_dispatch(db, day.site_id)
    assert await reserved(db) == 32 and await order_state(db, day.order_id) == "allocated"
    await assert_stock_invariants(db)


async def test_a_list_being_picked_is_kept_and_the_rest_is_given_back(db, day):
    await take(db, day.flour_list)
    _status, answer = await undo(db, await first_run(db))
    assert (answer["tasks"], answer["units"], answer["lists_cancelled"], answer["lists_kept"]) == (
        1,
        12,
        1,
        1,
    )
    assert (await list_row(db, day.flour_list)).status == "taken"
    assert await reserved(db) == 20  # the flour its picker is on
    assert await order_state(db, day.order_id) == "picking"
    await assert_stock_invariants(db)


async def test_a_run_whose_lists_are_all_being_picked_has_nothing_to_undo(db, day):
    await take(db, day.flour_list)
    await take(db, day.yog_list, "admin")
    with pytest.raises(NothingToUndo, match="being picked or finished"):
        await undo(db, await first_run(db))
    assert await reserved(db) == 32


async def test_a_cancelled_list_cannot_be_taken_and_leaves_the_pick_lists_screen(client, db, day):
    await undo(db, await first_run(db))
    with pytest.raises(Refused, match="was cancelled: nothing on it is left to pick"):
        await take(db, day.flour_list)
    with pytest.raises(Refused, match="This task was cancelled: its stock is no longer reserved for it"):
        await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)  # a tablet still showing it
    boss, boss_name = await persona_actor(db, "supervisor")
    with pytest.raises(Refused, match="was cancelled: nothing on it is left to pick"):
        await reassign_pick_list(
            db, day.flour_list, PERSONAS["operator"].username, site_ids=None, actor=boss,
            actor_name=boss_name, idempotency_key="give", now=PICK_TIME,
        )  # fmt: skip
    await sign_in(client, "operator")
    lists = visible_text((await client.get("/sites/LYS/picking")).text)
    assert "1-001" not in lists and "1-002" not in lists
    home = " ".join(visible_text((await client.get("/")).text).split())
    assert "à préparer" not in home  # no list waits for a picker


async def test_cancelling_the_last_order_of_a_list_cancels_the_list(db, day):
    await cancel(db, day.order_id)
    assert (await list_row(db, day.flour_list)).status == "cancelled"
    assert (await list_row(db, day.yog_list)).status == "cancelled"
    await assert_stock_invariants(db)


@pytest.mark.parametrize("attempt", range(3))
async def test_an_undo_and_a_take_at_once_never_both_hold_the_list(db_urls, test_settings, db, day, attempt):
    """Either the operator took the list first (the undo keeps it) or the undo cancelled it first (the take
    is refused): never a list in someone's hands whose tasks were given back."""
    settings = replace(test_settings.database, pool_size=6)
    busy = Database(sqlalchemy_config(db_urls, settings, application_name="test-undo"))
    operator, name = await persona_actor(db, "operator")
    run_id = await first_run(db)

    async def take_later() -> dict:  # the take starts later each attempt: it comes first, then after
        await asyncio.sleep(attempt * 0.04)
        return await take_pick_list(
            busy, day.flour_list, site_ids=None, actor=operator, actor_name=name,
            idempotency_key=uuid.uuid4().hex, now=PICK_TIME,
        )  # fmt: skip

    try:
        undone, taken = await asyncio.gather(undo(busy, run_id), take_later(), return_exceptions=True)
    finally:
        await busy.dispose()
    status = (await list_row(db, day.flour_list)).status
    if isinstance(taken, Refused):  # the undo came first
        assert "was cancelled" in taken.message
        assert (status, undone[1]["lists_kept"], undone[1]["tasks"]) == ("cancelled", 0, 2)
    else:  # the take came first
        assert (status, undone[1]["lists_kept"], undone[1]["tasks"]) == ("taken", 1, 1)
    async with db.sessions() as s:
        released_on_taken = await s.scalar(
            text("""SELECT count(*) FROM pick_tasks t JOIN pick_lists pl ON pl.id = t.pick_list_id
                    WHERE pl.status = 'taken' AND t.status = 'released'""")
        )
    assert released_on_taken == 0
    await assert_stock_invariants(db)


async def test_the_run_page_offers_the_undo_and_says_what_it_gave_back(client, db, day):
    run_id = await first_run(db)
    await sign_in(client, "supervisor")
    url = f"/sites/LYS/dispatch/runs/{run_id}"
    page = (await client.get(url)).text
    assert "Annuler cette répartition" in page
    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    done = await post_form(client, f"{url}/undo", {"idempotency_key": key})
    assert (done.status_code, done.headers["location"]) == (303, url)
    after = " ".join(visible_text((await client.get(url)).text).split())
    assert "1-001 A Annulée 0 / 0 0" in after and "1-002 B Annulée 0 / 0 0" in after  # nothing left on them
    assert "Annulée par Samir Superviseur le" in after
    assert "2 tâches rendues (32 unités), 1 commande relancée, 2 listes annulées." in after
    assert "Annuler cette répartition" not in after
    again = await post_form(
        client, f"{url}/undo", {"idempotency_key": "another"}, headers={"HX-Request": "true"}
    )
    assert again.status_code == 409 and "a déjà été annulée" in visible_text(again.text)
    await sign_in(client, "operator")
    assert (await post_form(client, f"{url}/undo", {"idempotency_key": "op"})).status_code == 403
