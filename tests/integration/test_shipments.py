"""Shipments on real PostgreSQL: what was picked leaves the dock once, orders are dispatched, what is
still owed becomes a backorder that the next run serves (and the original never again)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from app.db.models import DispatchOrder, Shipment, ShipmentLine, StockMovement
from app.services.errors import NotFound
from app.services.shipments import NothingToShip, ShipmentRequest, close_shipment
from tests.conftest import PERSONAS
from tests.integration.picking_fixtures import (
    balance,
    dispatched_day,
    line_figures,
    order_state,
    persona_actor,
    run_dispatch,
    tasks_by_sku,
)
from tests.integration.stock_fixtures import assert_stock_invariants
from tests.integration.test_operations import sign_in, visible_text
from tests.integration.test_picking import GS1_YOG_L1, confirm

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


async def ship(db, site_id, destination="MAG-A", parcels=2, key=None):
    actor, _name = await persona_actor(db, "operator")
    return await close_shipment(
        db,
        ShipmentRequest(site_id, destination, parcels),
        actor=actor,
        idempotency_key=key or uuid.uuid4().hex,
        now=NOW,
    )


async def test_a_shipment_takes_everything_picked_for_the_destination_off_the_dock(db, day):
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    status, answer = await ship(db, day.site_id, parcels=3)
    assert status == 201
    assert answer["number"] == "EXP-20261125-0001"
    assert (answer["units"], answer["lines"], answer["parcels"], answer["backorders"]) == (32, 2, 3, [])
    assert await balance(db, "SKU-FLOUR", "QUAI-E1") == (0, 0)
    assert await balance(db, "SKU-YOG", "QUAI-E1") == (0, 0)
    figures = await line_figures(db, day.order_id)
    assert figures == {"SKU-FLOUR": (20, 0, 0, 20, 0), "SKU-YOG": (12, 0, 0, 12, 0)}
    assert await order_state(db, day.order_id) == "dispatched"
    async with db.sessions() as s:
        shipment = await s.scalar(select(Shipment))
        lines = (await s.scalars(select(ShipmentLine).order_by(ShipmentLine.quantity))).all()
        dispatches = (await s.scalars(select(StockMovement).where(StockMovement.kind == "dispatch"))).all()
        order = await s.get(DispatchOrder, day.order_id)
    assert (shipment.parcels, shipment.units, shipment.destination_id) == (3, 32, day.destination_id)
    assert [(line.quantity, line.lot_id is not None) for line in lines] == [(12, True), (20, False)]
    assert sorted(m.quantity for m in dispatches) == [12, 20]
    assert {m.document for m in dispatches} == {"EXP-20261125-0001"}
    assert all(m.to_location_id is None for m in dispatches)
    assert order.dispatched_at == NOW
    await assert_stock_invariants(db)


async def test_shipments_of_a_day_are_numbered_in_order(db, day):
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    _s, first = await ship(db, day.site_id)
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    _s, second = await ship(db, day.site_id)
    assert (first["number"], second["number"]) == ("EXP-20261125-0001", "EXP-20261125-0002")


async def test_an_order_still_being_picked_stays_open_until_its_last_shipment(db, day):
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    _s, answer = await ship(db, day.site_id)
    assert (answer["units"], answer["dispatched"]) == (20, [])
    assert await order_state(db, day.order_id) == "allocated"  # the yoghurts are still reserved
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    _s, answer = await ship(db, day.site_id)
    assert answer["units"] == 12 and len(answer["dispatched"]) == 1
    assert await order_state(db, day.order_id) == "dispatched"
    await assert_stock_invariants(db)


async def test_what_is_still_owed_becomes_a_backorder_served_by_the_next_run_and_the_original_never(db, day):
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 14)  # 6 missing
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    _s, answer = await ship(db, day.site_id)
    async with db.sessions() as s:
        original = await s.get(DispatchOrder, day.order_id)
        [backorder] = (
            await s.scalars(select(DispatchOrder).where(DispatchOrder.backorder_of == day.order_id))
        ).all()
    assert answer["backorders"] == [f"{original.number}-R1"] == [backorder.number]
    assert (original.state, backorder.state, backorder.units) == ("dispatched", "released", 6)
    assert (backorder.destination_id, backorder.site_id, backorder.priority) == (
        original.destination_id,
        original.site_id,
        original.priority,
    )
    assert await line_figures(db, backorder.id) == {"SKU-FLOUR": (6, 0, 0, 0, 0)}
    # The original keeps what was ordered (the delivery note says 20 ordered, 14 sent) but is closed.
    assert (await line_figures(db, day.order_id))["SKU-FLOUR"] == (20, 0, 0, 14, 6)

    async with db.transaction() as s:
        await s.execute(text("UPDATE products SET allow_eaches = true WHERE sku = 'SKU-FLOUR'"))
    await run_dispatch(db, day.site_id)
    async with db.sessions() as s:
        reserved_for = (
            await s.execute(
                text("""SELECT o.id, sum(t.quantity) FROM pick_tasks t
                        JOIN dispatch_order_lines l ON l.id = t.order_line_id
                        JOIN dispatch_orders o ON o.id = l.order_id
                        WHERE t.status = 'open' GROUP BY o.id""")
            )
        ).all()
    assert reserved_for == [(backorder.id, 6)]  # the need is served once, through the backorder

    # Short again: the backorder's own backorder counts on from the root (R2, not R1-R1).
    flour_task = (await tasks_by_sku(db))["SKU-FLOUR"][0]
    await confirm(db, flour_task, "A-01-01", "SKU-FLOUR", 4)
    _s, answer = await ship(db, day.site_id)
    assert answer["backorders"] == [f"{original.number}-R2"]
    await assert_stock_invariants(db)


async def test_nothing_picked_means_nothing_to_ship(db, day):
    with pytest.raises(NothingToShip) as refused:
        await ship(db, day.site_id)
    assert refused.value.facts["destination"] == "MAG-A"
    with pytest.raises(NotFound):
        await ship(db, day.site_id, destination="NOPE")


async def test_a_replayed_shipment_returns_the_first_answer_and_ships_nothing_more(db, day):
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    first = await ship(db, day.site_id, key="close-1")
    second = await ship(db, day.site_id, key="close-1")
    assert first == second
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM shipments")) == 1
        assert await s.scalar(text("SELECT count(*) FROM stock_movements WHERE kind = 'dispatch'")) == 1
    await assert_stock_invariants(db)


async def test_an_orders_page_shows_its_lists_its_shipments_and_its_backorder(client, db, day):
    await sign_in(client, "supervisor")
    url = f"/sites/LYS/orders/{day.order_id}"
    allocated = " ".join(visible_text((await client.get(url)).text).split())
    # Allocated: two lists serve it (zones A and B), nobody has taken them yet; nothing shipped.
    assert "Préparation et expédition" in allocated and "Bon de livraison" not in allocated
    assert "A À préparer — 0 / 1 0 / 20" in allocated and "B À préparer — 0 / 1 0 / 12" in allocated
    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 14)  # 6 missing
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)
    _s, answer = await ship(db, day.site_id)
    html = (await client.get(url)).text
    text_ = " ".join(visible_text(html).split())
    assert f"{PERSONAS['operator'].full_name} 1 / 1 14 / 20" in text_  # the flour list, short by 6
    assert "1-001 A Terminée" in text_ and "1-002 B Terminée Olivia" in text_
    assert answer["number"] in text_ and "Bon de livraison" in text_
    assert f'href="/sites/LYS/shipments/{answer["shipment"]}/note"' in html
    backorder = answer["backorders"][0]
    assert f"Reliquats : {backorder} Lancée" in text_
