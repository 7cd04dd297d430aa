"""Picking on real PostgreSQL: taking lists, each wrong scan refused for its own reason, full and short
picks, replays that move nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from app.db.models import StockMovement
from app.services.errors import Invalid, NotFound, Refused
from app.services.picking import (
    ListTaken,
    PickConfirmation,
    WrongPick,
    confirm_pick,
    reassign_pick_list,
    release_pick_list,
    take_pick_list,
)
from tests.integration.picking_fixtures import (
    PICK_TIME,
    balance,
    dispatched_day,
    line_figures,
    list_row,
    order_state,
    persona_actor,
    run_dispatch,
    take,
    task_row,
    tasks_by_sku,
)
from tests.integration.stock_fixtures import assert_stock_invariants

NOW = PICK_TIME
GS1_YOG_L1 = "]C1" + "0103760000000024" + "17270131" + "10L1"


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


async def confirm(db, task_id, location, product, quantity, lot=None, role="operator", key=None, now=NOW):
    actor, _name = await persona_actor(db, role)
    return await confirm_pick(
        db,
        task_id,
        PickConfirmation(location, product, lot, quantity),
        site_ids=None,
        actor=actor,
        idempotency_key=key or uuid.uuid4().hex,
        now=now,
    )


async def movement_count(db) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(StockMovement)) or 0)


# ---------------------------------------------------------------- taking a list


async def test_of_two_operators_taking_one_list_at_once_exactly_one_gets_it(db, day):
    results = await asyncio.gather(
        take(db, day.flour_list, "operator"), take(db, day.flour_list, "supervisor"), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, tuple)]
    losers = [r for r in results if isinstance(r, ListTaken)]
    assert len(winners) == 1 and len(losers) == 1
    winner_name = winners[0][1]["taken_by_name"]
    assert losers[0].facts["name"] == winner_name  # the refusal says who has it
    pick_list = await list_row(db, day.flour_list)
    assert pick_list.status == "taken" and pick_list.taken_at == NOW


async def test_taking_a_list_puts_its_orders_in_picking_and_giving_it_back_undoes_it(db, day):
    assert await order_state(db, day.order_id) == "allocated"
    await take(db, day.flour_list)
    assert await order_state(db, day.order_id) == "picking"
    actor, _ = await persona_actor(db, "operator")
    await release_pick_list(
        db, day.flour_list, site_ids=None, actor=actor, supervisor=False, idempotency_key="r1", now=NOW
    )
    assert (await list_row(db, day.flour_list)).status == "open"
    assert await order_state(db, day.order_id) == "allocated"


async def test_only_its_holder_or_a_supervisor_gives_a_list_back(db, day):
    await take(db, day.flour_list, "operator")
    other, _ = await persona_actor(db, "lille_operator")
    with pytest.raises(ListTaken):
        await release_pick_list(
            db, day.flour_list, site_ids=None, actor=other, supervisor=False, idempotency_key="x", now=NOW
        )
    boss, _ = await persona_actor(db, "supervisor")
    await release_pick_list(
        db, day.flour_list, site_ids=None, actor=boss, supervisor=True, idempotency_key="y", now=NOW
    )
    assert (await list_row(db, day.flour_list)).taken_by is None


async def test_a_supervisor_reassigns_a_list_to_someone_of_the_site_only(db, day):
    await take(db, day.flour_list, "operator")
    boss, boss_name = await persona_actor(db, "supervisor")
    with pytest.raises(Invalid) as refused:
        await reassign_pick_list(
            db, day.flour_list, "lucas", site_ids=None, actor=boss, actor_name=boss_name,
            idempotency_key="a", now=NOW,
        )  # fmt: skip
    assert refused.value.facts["username"] == "lucas"  # works at Lille, not Lyon
    _status, answer = await reassign_pick_list(
        db,
        day.flour_list,
        "samir",
        site_ids=None,
        actor=boss,
        actor_name=boss_name,
        idempotency_key="b",
        now=NOW,
    )
    assert answer["taken_by_name"] == boss_name
    async with db.sessions() as s:
        event = await s.scalar(text("SELECT detail FROM access_journal WHERE event = 'pick_list.reassigned'"))
    assert event["to"] == "samir" and event["previous"] == "Olivia Opérateur"


async def test_a_list_of_another_site_is_unknown(db, day):
    actor, name = await persona_actor(db, "lille_operator")
    with pytest.raises(NotFound):
        await take_pick_list(
            db, day.flour_list, site_ids={999}, actor=actor, actor_name=name, idempotency_key="k", now=NOW
        )


# ---------------------------------------------------------------- wrong scans


async def test_a_wrong_location_is_refused_with_both_codes(db, day):
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.flour_task, "LOC-LYS-A-01-02", "SKU-FLOUR", 20)
    assert refused.value.facts["problem"] == "wrong_location"
    assert (refused.value.facts["expected"], refused.value.facts["scanned"]) == ("A-01-01", "LOC-LYS-A-01-02")
    assert refused.value.field == "location"


async def test_an_unknown_location_is_a_wrong_location(db, day):
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.flour_task, "Z-99", "SKU-FLOUR", 20)
    assert refused.value.facts["problem"] == "wrong_location"


async def test_a_wrong_product_is_refused(db, day):
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.flour_task, "A-01-01", "03760000000017", 20)  # the water's EAN
    assert (refused.value.facts["problem"], refused.value.facts["scanned"]) == ("wrong_product", "SKU-WATER")


async def test_a_wrong_lot_is_refused_and_a_missing_lot_asked_for(db, day):
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.yog_task, "B-01-01", "SKU-YOG", 12, lot="L2")
    assert refused.value.facts["problem"] == "wrong_lot"
    assert (refused.value.facts["expected"], refused.value.facts["scanned"]) == ("L1", "L2")
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.yog_task, "B-01-01", "SKU-YOG", 12)
    assert refused.value.facts["problem"] == "lot_missing"


async def test_an_expired_lot_is_never_picked(db, day):
    after_expiry = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12, now=after_expiry)
    assert refused.value.facts["problem"] == "expired_lot"
    assert refused.value.facts["lot"] == "L1"
    # On its expiry day it is still good (the site's day, Paris time).
    last_day = datetime(2027, 1, 31, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    _status, answer = await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12, now=last_day)
    assert answer["status"] == "picked"


async def test_picking_more_than_the_task_is_refused(db, day):
    with pytest.raises(WrongPick) as refused:
        await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 21)
    assert refused.value.facts["problem"] == "too_many"
    assert await movement_count(db) == 4  # the receipts and put-aways only


async def test_a_refused_confirmation_changes_nothing(db, day):
    before = await movement_count(db)
    with pytest.raises(WrongPick):
        await confirm(db, day.flour_task, "A-01-02", "SKU-FLOUR", 20)
    assert await movement_count(db) == before
    assert (await list_row(db, day.flour_list)).status == "open"  # not even taken
    await assert_stock_invariants(db)


async def test_a_list_taken_by_someone_else_cannot_be_picked(db, day):
    await take(db, day.flour_list, "supervisor")
    with pytest.raises(ListTaken) as refused:
        await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20, role="operator")
    assert refused.value.facts["name"] == "Samir Superviseur"


# ---------------------------------------------------------------- full and short picks


async def test_a_full_pick_moves_the_stock_to_the_dock_and_consumes_its_reservation(db, day):
    assert await balance(db, "SKU-FLOUR", "A-01-01") == (30, 20)
    status, answer = await confirm(db, day.flour_task, "LOC-LYS-A-01-01", "03760000000048", 20)
    assert status == 201
    assert (answer["status"], answer["picked"], answer["short"]) == ("picked", 20, 0)
    assert await balance(db, "SKU-FLOUR", "A-01-01") == (10, 0)
    assert await balance(db, "SKU-FLOUR", "QUAI-E1") == (20, 0)
    assert (await task_row(db, day.flour_task)).status == "picked"
    assert (await list_row(db, day.flour_list)).status == "done"  # its only task
    assert answer["list_status"] == "done"
    assert (await line_figures(db, day.order_id))["SKU-FLOUR"] == (20, 0, 20, 0, 0)
    assert await order_state(db, day.order_id) == "allocated"  # the yoghurts are still reserved
    async with db.sessions() as s:
        [pick] = (await s.scalars(select(StockMovement).where(StockMovement.kind == "pick"))).all()
    assert (pick.quantity, pick.document) == (20, answer and (await list_row(db, day.flour_list)).number)
    await assert_stock_invariants(db)


async def test_a_gs1_label_gives_the_product_and_its_lot(db, day):
    _status, answer = await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    assert answer["status"] == "picked"
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    assert await order_state(db, day.order_id) == "picked"
    await assert_stock_invariants(db)


async def test_a_short_pick_releases_the_rest_and_the_need_comes_back_to_the_next_run(db, day):
    _status, answer = await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 14)
    assert (answer["status"], answer["picked"], answer["short"]) == ("short", 14, 6)
    task = await task_row(db, day.flour_task)
    assert (task.status, task.picked, task.short) == ("short", 14, 6)
    assert await balance(db, "SKU-FLOUR", "A-01-01") == (16, 0)  # 6 released, not moved
    assert await balance(db, "SKU-FLOUR", "QUAI-E1") == (14, 0)
    # quantity, allocated, picked, shipped, short picked: 6 units of need again
    assert (await line_figures(db, day.order_id))["SKU-FLOUR"] == (20, 0, 14, 0, 6)
    await assert_stock_invariants(db)

    async with db.transaction() as s:  # loose units may go: the 6 are less than a pack of 10
        await s.execute(text("UPDATE products SET allow_eaches = true WHERE sku = 'SKU-FLOUR'"))
    await run_dispatch(db, day.site_id)  # the next run allocates the 6 again
    again = await tasks_by_sku(db)
    assert (await task_row(db, again["SKU-FLOUR"][0])).quantity == 6
    assert (await line_figures(db, day.order_id))["SKU-FLOUR"] == (20, 6, 14, 0, 6)
    await assert_stock_invariants(db)


async def test_nothing_found_needs_only_the_location(db, day):
    _status, answer = await confirm(db, day.yog_task, "B-01-01", "", 0)
    assert (answer["status"], answer["picked"], answer["short"], answer["movements"]) == ("short", 0, 12, [])
    assert await balance(db, "SKU-YOG", "B-01-01") == (24, 0)
    assert (await line_figures(db, day.order_id))["SKU-YOG"] == (12, 0, 0, 0, 12)
    await assert_stock_invariants(db)


async def test_a_replayed_confirmation_returns_the_first_answer_and_moves_nothing(db, day):
    first = await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20, key="tap-1")
    moved = await movement_count(db)
    second = await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20, key="tap-1")
    assert second == first
    assert await movement_count(db) == moved
    with pytest.raises(Refused):  # a second tap with a fresh key finds the task done
        await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20, key="tap-2")
    await assert_stock_invariants(db)


async def test_a_replayed_refusal_is_refused_the_same_way(db, day):
    with pytest.raises(WrongPick):
        await confirm(db, day.flour_task, "A-01-02", "SKU-FLOUR", 20, key="same")
    with pytest.raises(WrongPick) as again:
        await confirm(db, day.flour_task, "A-01-02", "SKU-FLOUR", 20, key="same")
    assert again.value.facts["problem"] == "wrong_location"
