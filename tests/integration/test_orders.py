"""Orders through the services: created once, released and cancelled when allowed, refused with reasons."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.db.models import AccessEvent, DispatchOrder, DispatchOrderLine
from app.services.errors import Invalid, NotFound, Refused
from app.services.idempotency import KeyReused
from app.services.orders import (
    OrderData,
    OrderLineData,
    cancel_order,
    create_order,
    hold_order,
    release_order,
)
from tests.integration.order_fixtures import (
    NOW,
    actor,
    make_destinations,
    mark_picked,
    put_in_stock,
    reserve_line,
)
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog

DUE = NOW + timedelta(hours=6)


@pytest.fixture
async def site(db):
    catalog = await make_catalog(db)
    await make_destinations(db)
    return catalog.site_id


def order(site_id, *lines, destination="MAG-002", **options):
    return OrderData(
        site_id,
        destination,
        DUE,
        tuple(OrderLineData(product, quantity) for product, quantity in lines or [("SKU-WATER", 12)]),
        **options,
    )


async def create(db, data, key=None, when=NOW, who="samir"):
    _status, answer = await create_order(
        db, data, actor=await actor(db, who), idempotency_key=key or uuid.uuid4().hex, now=when
    )
    return answer


async def release(db, order_id, key=None):
    return await release_order(
        db, order_id, actor=await actor(db), idempotency_key=key or uuid.uuid4().hex, now=NOW
    )


async def cancel(db, order_id, key=None):
    return await cancel_order(
        db, order_id, actor=await actor(db), idempotency_key=key or uuid.uuid4().hex, now=NOW
    )


async def count(db, model):
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_a_new_order_is_a_draft_numbered_by_the_sites_day_with_the_destinations_tier(db, site):
    first = await create(db, order(site, ("SKU-WATER", 12), ("03760000000048", 30)))
    second = await create(db, order(site, destination="MAG-001"))
    assert first["number"] == "CMD-20261125-0001" and second["number"] == "CMD-20261125-0002"
    assert (first["state"], first["priority"], first["source"], first["units"]) == ("draft", 2, "screen", 42)
    assert second["priority"] == 1  # MAG-001 is a tier-1 destination
    assert [(line["sku"], line["quantity"], line["need"]) for line in first["lines"]] == [
        ("SKU-WATER", 12, 12),
        ("SKU-FLOUR", 30, 30),
    ]
    # 23:30 UTC is already the 26th in Lyon: the number follows the warehouse's calendar.
    late_evening = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert (await create(db, order(site), when=late_evening))["number"] == "CMD-20261126-0001"


async def test_units_of_an_order_are_the_sum_of_its_lines(db, site):
    answer = await create(db, order(site, ("SKU-WATER", 12), ("SKU-GLOVE", 7), priority=5))
    async with db.sessions() as s:
        units = await s.scalar(select(DispatchOrder.units).where(DispatchOrder.id == answer["id"]))
        lines = await s.scalar(
            select(func.sum(DispatchOrderLine.quantity)).where(DispatchOrderLine.order_id == answer["id"])
        )
    assert units == lines == 19
    assert answer["priority"] == 5


async def test_an_order_released_at_once_joins_the_demand(db, site):
    answer = await create(db, order(site, release=True, number="ERP-7781", source="api"))
    assert (answer["number"], answer["state"], answer["source"]) == ("ERP-7781", "released", "api")
    assert answer["released_at"] is not None


async def test_a_replayed_creation_returns_the_first_answer_and_creates_one_order(db, site):
    first = await create(db, order(site), key="order-1")
    again = await create(db, order(site), key="order-1")
    assert again == first
    assert await count(db, DispatchOrder) == 1
    with pytest.raises(KeyReused):
        await create(db, order(site, ("SKU-WATER", 13)), key="order-1")


async def test_an_unknown_product_is_refused_naming_its_line_and_nothing_is_written(db, site):
    with pytest.raises(Invalid) as refused:
        await create(db, order(site, ("SKU-WATER", 1), ("NO-SUCH", 2)), key="bad-1")
    assert refused.value.field == "lines"
    assert refused.value.facts == {"line": 2, "product": "NO-SUCH"}
    with pytest.raises(Invalid):  # a replay is refused the same way
        await create(db, order(site, ("SKU-WATER", 1), ("NO-SUCH", 2)), key="bad-1")
    assert await count(db, DispatchOrder) == await count(db, DispatchOrderLine) == 0


async def test_a_product_twice_in_an_order_is_refused_even_by_sku_and_gtin(db, site):
    with pytest.raises(Invalid) as refused:
        await create(db, order(site, ("SKU-WATER", 1), ("03760000000017", 2)))
    assert refused.value.facts == {"line": 2, "sku": "SKU-WATER", "first": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": ()}, "lines"),
        ({"lines": (OrderLineData("SKU-WATER", 0),)}, "lines"),
        ({"priority": 0}, "priority"),
        ({"number": "CMD/1"}, "number"),
        ({"due_at": datetime(2026, 11, 26, 12, 0)}, "due_at"),
        ({"destination": " "}, "destination"),
    ],
)
async def test_a_malformed_order_is_refused_naming_the_field(db, site, change, field):
    data = order(site)
    with pytest.raises(Invalid) as refused:
        await create(db, OrderData(**{**vars(data), **change}))
    assert refused.value.field == field


async def test_unknown_and_inactive_destinations_are_refused(db, site):
    for code, message in (
        ("NOPE", "Unknown destination: {code}."),
        ("AGE-009", "Destination {code} is not in use."),
    ):
        with pytest.raises(Invalid) as refused:
            await create(db, order(site, destination=code))
        assert (refused.value.field, refused.value.message) == ("destination", message)


async def test_an_order_number_is_unique(db, site):
    await create(db, order(site, number="ERP-1"))
    with pytest.raises(Refused) as refused:
        await create(db, order(site, number="ERP-1"))
    assert refused.value.message == "Order {number} already exists." and refused.value.status == 409


async def test_orders_created_at_once_get_distinct_numbers(db, site):
    answers = await asyncio.gather(*(create(db, order(site)) for _ in range(6)))
    assert sorted(a["number"] for a in answers) == [f"CMD-20261125-000{n}" for n in range(1, 7)]


async def test_a_draft_is_released_once_and_a_replay_gets_the_same_answer(db, site):
    draft = await create(db, order(site))
    _status, answer = await release(db, draft["id"], key="rel-1")
    assert answer == {"id": draft["id"], "number": draft["number"], "state": "released", "released_units": 0}
    assert (await release(db, draft["id"], key="rel-1"))[1] == answer
    with pytest.raises(Refused) as refused:
        await release(db, draft["id"])
    assert refused.value.message == "Order {number} is already released."
    assert refused.value.facts == {"number": draft["number"], "state": "released"}


async def test_releasing_or_cancelling_an_unknown_order_is_not_found(db, site):
    with pytest.raises(NotFound):
        await release(db, 999_999)
    with pytest.raises(NotFound):
        await cancel(db, 999_999)


async def test_a_draft_or_released_order_can_be_cancelled_but_only_once(db, site):
    draft = await create(db, order(site))
    released = await create(db, order(site, release=True))
    for o in (draft, released):
        assert (await cancel(db, o["id"]))[1]["state"] == "cancelled"
        with pytest.raises(Refused, match="already cancelled"):
            await cancel(db, o["id"])
        with pytest.raises(Refused, match="cancelled"):
            await release(db, o["id"])


async def test_cancelling_an_allocated_order_gives_its_reserved_stock_back(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    allocated = await create(db, order(site, ("SKU-WATER", 12), release=True))
    other = await create(db, order(site, ("SKU-WATER", 6), release=True))
    task = await reserve_line(db, allocated["id"], 1, 12)
    await reserve_line(db, other["id"], 1, 6)
    _status, answer = await cancel(db, allocated["id"], key="cancel-1")
    assert (answer["state"], answer["released_units"]) == ("cancelled", 12)
    async with db.sessions() as s:
        reserved = await s.scalar(text("SELECT sum(reserved) FROM stock_balances"))
        task_status = await s.scalar(text("SELECT status FROM pick_tasks WHERE id = :t"), {"t": task})
        allocated_units = await s.scalar(
            text("SELECT allocated FROM dispatch_order_lines WHERE order_id = :o"), {"o": allocated["id"]}
        )
    assert (reserved, task_status, allocated_units) == (6, "released", 0)  # the other order keeps its 6
    assert (await cancel(db, allocated["id"], key="cancel-1"))[1] == answer  # a replay releases nothing more
    await assert_stock_invariants(db)


async def test_an_order_being_picked_cannot_be_cancelled(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    picking = await create(db, order(site, release=True))
    await reserve_line(db, picking["id"], 1, 12, taken_by="olivia")
    with pytest.raises(Refused) as refused:
        await cancel(db, picking["id"])
    assert refused.value.message == "Order {number} is being picked: it can no longer be cancelled."
    assert refused.value.facts["state"] == "picking"
    await assert_stock_invariants(db)


async def test_an_order_with_picked_units_cannot_be_cancelled_and_says_how_many(db, site):
    picked = await create(db, order(site, ("SKU-WATER", 12), release=True))
    await mark_picked(db, picked["id"], 1, 5)
    with pytest.raises(Refused) as refused:
        await cancel(db, picked["id"])
    assert refused.value.facts == {"number": picked["number"], "state": "picked", "picked": 5}


async def test_every_order_change_is_journaled_with_who_did_it(db, site):
    draft = await create(db, order(site))
    await release(db, draft["id"])
    await cancel(db, draft["id"])
    async with db.sessions() as s:
        events = (
            await s.execute(select(AccessEvent.event, AccessEvent.actor_name).order_by(AccessEvent.id))
        ).all()
    assert [e for e in events if e[0].startswith("order.")] == [
        ("order.created", "samir"),
        ("order.released", "samir"),
        ("order.cancelled", "samir"),
    ]


async def hold(db, order_id, key=None):
    return await hold_order(
        db, order_id, actor=await actor(db), idempotency_key=key or uuid.uuid4().hex, now=NOW
    )


async def test_an_order_on_hold_gives_its_stock_back_and_waits_as_a_draft_until_released(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    allocated = await create(db, order(site, ("SKU-WATER", 12), release=True))
    await reserve_line(db, allocated["id"], 1, 12)
    _status, answer = await hold(db, allocated["id"], key="hold-1")
    assert (answer["state"], answer["released_units"]) == ("draft", 12)
    assert (await hold(db, allocated["id"], key="hold-1"))[1] == answer  # a replay: nothing more
    async with db.sessions() as s:
        reserved = await s.scalar(text("SELECT sum(reserved) FROM stock_balances"))
        released_at = await s.scalar(
            select(DispatchOrder.released_at).where(DispatchOrder.id == allocated["id"])
        )
        list_status = await s.scalar(text("SELECT status FROM pick_lists"))
        events = (await s.scalars(select(AccessEvent.event).where(AccessEvent.event == "order.held"))).all()
    assert (reserved, released_at, list_status, events) == (0, None, "cancelled", ["order.held"])
    with pytest.raises(Refused, match="is a draft: no run takes it until it is released"):
        await hold(db, allocated["id"])
    assert (await release(db, allocated["id"]))[1]["state"] == "released"  # back in the next run's demand
    await assert_stock_invariants(db)


async def test_an_order_being_picked_or_with_picked_units_cannot_be_put_on_hold(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    picking = await create(db, order(site, release=True))
    await reserve_line(db, picking["id"], 1, 12, taken_by="olivia")
    with pytest.raises(Refused, match="is being picked: it can no longer be put on hold"):
        await hold(db, picking["id"])
    picked = await create(db, order(site, ("SKU-WATER", 12), release=True))
    await mark_picked(db, picked["id"], 1, 5)
    with pytest.raises(Refused) as refused:
        await hold(db, picked["id"])
    assert refused.value.facts["picked"] == 5 and "cannot be put on hold" in refused.value.message
    await assert_stock_invariants(db)
