"""Editing an order no stock was reserved for: applied whole or not at all, once, and never under a run."""

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.db.models import AccessEvent
from app.db.session import Database, sqlalchemy_config
from app.services.dispatch_runs import RunOptions, start_dispatch_run
from app.services.errors import Invalid, NotFound, Refused
from app.services.orders import ChangedMeanwhile, OrderData, OrderLineData, edit_order
from app.services.reservations import release_tasks
from tests.integration.dispatch_fixtures import ACTOR as RUN_ACTOR
from tests.integration.order_fixtures import NOW, actor, make_destinations, put_in_stock, reserve_line
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog
from tests.integration.test_orders import DUE, cancel, create, order

LATER = NOW + timedelta(minutes=5)
DAY = timedelta(days=1)


@pytest.fixture
async def site(db):
    catalog = await make_catalog(db)
    await make_destinations(db)
    return catalog.site_id


async def edit(db, order_id, data, *, version=None, key=None, when=LATER):
    _status, answer = await edit_order(
        db,
        order_id,
        data,
        version=version,
        actor=await actor(db),
        idempotency_key=key or uuid.uuid4().hex,
        now=when,
    )
    return answer


def lines_of(answer):
    return [(line["line_no"], line["sku"], line["quantity"]) for line in answer["lines"]]


async def stored(db, order_id):
    async with db.sessions() as s:
        head = (
            await s.execute(
                text("""SELECT d.code, o.due_at, o.priority, o.units, o.state, o.updated_at
                        FROM dispatch_orders o JOIN destinations d ON d.id = o.destination_id
                        WHERE o.id = :o"""),
                {"o": order_id},
            )
        ).one()
        lines = (
            await s.execute(
                text("""SELECT l.line_no, p.sku, l.quantity FROM dispatch_order_lines l
                        JOIN products p ON p.id = l.product_id WHERE l.order_id = :o ORDER BY l.line_no"""),
                {"o": order_id},
            )
        ).all()
    return tuple(head), [tuple(line) for line in lines]


async def test_a_draft_is_edited_whole_destination_due_priority_and_lines(db, site):
    draft = await create(db, order(site, ("SKU-WATER", 12), ("SKU-GLOVE", 7), ("SKU-FLOUR", 30)))
    later = DUE + timedelta(days=1)
    changed = OrderData(
        site,
        "mag-001",  # codes are read as typed on any screen: upper-cased
        later,
        (OrderLineData("SKU-FLOUR", 40), OrderLineData("03760000000017", 6), OrderLineData("SKU-YOG", 3)),
        priority=4,
    )
    answer = await edit(db, draft["id"], changed)
    assert answer["changed"] == ["destination", "due_at", "priority", "lines"]
    assert (answer["number"], answer["state"], answer["destination"]) == (draft["number"], "draft", "MAG-001")
    # The glove line went, flour and water changed, rice came: numbered again from 1.
    assert lines_of(answer) == [(1, "SKU-FLOUR", 40), (2, "SKU-WATER", 6), (3, "SKU-YOG", 3)]
    head, lines = await stored(db, draft["id"])
    assert head[:4] == ("MAG-001", later, 4, 49)  # units: the sum of the new lines
    assert lines == [(1, "SKU-FLOUR", 40), (2, "SKU-WATER", 6), (3, "SKU-YOG", 3)]
    async with db.sessions() as s:
        event = (
            await s.execute(
                select(AccessEvent.event, AccessEvent.actor_name, AccessEvent.detail).where(
                    AccessEvent.event == "order.changed"
                )
            )
        ).one()
    assert event[:2] == ("order.changed", "samir")
    assert event[2]["changed"] == ["destination", "due_at", "priority", "lines"]


async def test_a_released_order_no_run_reserved_for_is_edited_and_stays_released(db, site):
    released = await create(db, order(site, ("SKU-WATER", 12), release=True))
    answer = await edit(db, released["id"], order(site, ("SKU-WATER", 18)))
    assert (answer["state"], answer["changed"], lines_of(answer)) == (
        "released",
        ["lines"],
        [(1, "SKU-WATER", 18)],
    )
    assert answer["released_at"] == released["released_at"]


async def test_a_blank_priority_takes_the_destinations_tier_and_an_unchanged_order_is_left_alone(db, site):
    draft = await create(db, order(site, priority=7))
    assert (await edit(db, draft["id"], order(site)))["priority"] == 2  # MAG-002's tier
    before = await stored(db, draft["id"])
    again = await edit(db, draft["id"], order(site), when=LATER + timedelta(minutes=1))
    assert again["changed"] == []
    assert await stored(db, draft["id"]) == before  # not even its version moved
    async with db.sessions() as s:
        events = await s.scalar(text("SELECT count(*) FROM access_journal WHERE event = 'order.changed'"))
    assert events == 1


async def test_an_order_stock_was_reserved_for_can_no_longer_be_edited(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    allocated = await create(db, order(site, ("SKU-WATER", 12), release=True))
    await reserve_line(db, allocated["id"], 1, 12)
    before = await stored(db, allocated["id"])
    with pytest.raises(Refused) as refused:
        await edit(db, allocated["id"], order(site, ("SKU-WATER", 6)))
    assert refused.value.message.startswith("Order {number} can no longer be edited: stock has already been")
    # Cancelled, its reservation is given back; it was reserved for once all the same, so it stays as it was.
    await cancel(db, allocated["id"])
    with pytest.raises(Refused, match="already cancelled"):
        await edit(db, allocated["id"], order(site, ("SKU-WATER", 6)))
    head, lines = await stored(db, allocated["id"])
    assert (head[:4], lines) == (before[0][:4], before[1])
    await assert_stock_invariants(db)


async def test_a_released_order_a_run_reserved_for_once_stays_as_it_was_even_if_released_again(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    released = await create(db, order(site, ("SKU-WATER", 12), release=True))
    task = await reserve_line(db, released["id"], 1, 12)
    async with db.transaction() as s:  # its reservation given back (as a short pick does), released again
        await release_tasks(s, [task], NOW)
        await s.execute(
            text("UPDATE dispatch_orders SET state = 'released' WHERE id = :o"), {"o": released["id"]}
        )
    with pytest.raises(Refused, match="can no longer be edited"):
        await edit(db, released["id"], order(site, ("SKU-WATER", 6)))


async def test_an_edit_made_on_an_older_version_is_refused_until_made_knowingly(db, site):
    draft = await create(db, order(site, ("SKU-WATER", 12)))
    seen = (await stored(db, draft["id"]))[0][5]
    await edit(db, draft["id"], order(site, ("SKU-WATER", 20)), version=seen)  # Samir's change
    with pytest.raises(ChangedMeanwhile) as refused:  # Claire's form was drawn before it
        await edit(db, draft["id"], order(site, ("SKU-WATER", 6)), version=seen)
    assert refused.value.status == 409
    assert (await stored(db, draft["id"]))[1] == [(1, "SKU-WATER", 20)]  # nothing written
    now_seen = (await stored(db, draft["id"]))[0][5]
    answer = await edit(db, draft["id"], order(site, ("SKU-WATER", 6)), version=now_seen)
    assert lines_of(answer) == [(1, "SKU-WATER", 6)]


async def test_a_replayed_edit_gets_the_first_answer_and_applies_once(db, site):
    draft = await create(db, order(site, ("SKU-WATER", 12)))
    first = await edit(db, draft["id"], order(site, ("SKU-WATER", 20)), key="edit-1")
    again = await edit(
        db, draft["id"], order(site, ("SKU-WATER", 20)), key="edit-1", when=LATER + timedelta(1)
    )
    assert again == first
    async with db.sessions() as s:
        events = await s.scalar(text("SELECT count(*) FROM access_journal WHERE event = 'order.changed'"))
    assert events == 1


async def test_bad_input_is_refused_naming_the_line_and_the_order_stays_as_it_was(db, site):
    draft = await create(db, order(site, ("SKU-WATER", 12), ("SKU-GLOVE", 7)))
    before = await stored(db, draft["id"])
    with pytest.raises(Invalid) as unknown:
        await edit(db, draft["id"], order(site, ("SKU-WATER", 12), ("SKU-NOPE", 1)))
    assert (unknown.value.field, unknown.value.facts["line"]) == ("lines", 2)
    with pytest.raises(Invalid, match="already on line"):
        await edit(db, draft["id"], order(site, ("SKU-WATER", 12), ("03760000000017", 1)))
    with pytest.raises(Invalid) as inactive:
        await edit(db, draft["id"], order(site, destination="AGE-009"))
    assert inactive.value.field == "destination"
    with pytest.raises(Invalid):
        await edit(db, draft["id"], replace(order(site), lines=()))
    assert await stored(db, draft["id"]) == before


async def test_an_order_of_another_site_or_none_is_not_found(db, site):
    draft = await create(db, order(site))
    with pytest.raises(NotFound):
        await edit(db, draft["id"], replace(order(site), site_id=site + 1000))
    with pytest.raises(NotFound):
        await edit(db, 999_999, order(site))


async def test_the_database_keeps_a_line_stock_was_reserved_for_and_lets_a_drafts_go(db, site):
    await put_in_stock(db, site, "SKU-WATER", 30)
    allocated = await create(db, order(site, ("SKU-WATER", 12), release=True))
    await reserve_line(db, allocated["id"], 1, 12)
    draft = await create(db, order(site, ("SKU-WATER", 12)))
    for statement in (
        f"DELETE FROM dispatch_order_lines WHERE order_id = {allocated['id']}",
        "TRUNCATE dispatch_order_lines CASCADE",
    ):
        with pytest.raises(DBAPIError, match="dispatch_order_lines keeps its rows for good"):
            async with db.transaction() as s:
                await s.execute(text(statement))
    async with db.transaction() as s:
        await s.execute(text("DELETE FROM dispatch_order_lines WHERE order_id = :o"), {"o": draft["id"]})
    assert (await stored(db, draft["id"]))[1] == []
    assert (await stored(db, allocated["id"]))[1] == [(1, "SKU-WATER", 12)]


@pytest.mark.parametrize("change", ["edit", "delete"])
async def test_a_change_of_lines_waits_for_a_run_in_flight_and_is_refused_once_it_reserved(
    db_urls, test_settings, db, site, change
):
    """A run holds its site's lock from reading demand to its commit. An edit (or a bare DELETE of the
    lines, which the database itself guards) waits for it, then sees what it reserved and is refused."""
    await put_in_stock(db, site, "SKU-WATER", 30)
    released = await create(db, order(site, ("SKU-WATER", 12), release=True))
    busy = Database(sqlalchemy_config(db_urls, test_settings.database, application_name="test-edits"))
    written, go_on = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        written.set()
        await go_on.wait()

    async def change_lines() -> None:
        if change == "edit":
            await edit(busy, released["id"], order(site, ("SKU-WATER", 6)))
        else:
            async with busy.transaction() as s:
                await s.execute(
                    text("DELETE FROM dispatch_order_lines WHERE order_id = :o"), {"o": released["id"]}
                )

    try:
        run = asyncio.create_task(reserve_line(busy, released["id"], 1, 12, before_commit=hold))
        await written.wait()
        changing = asyncio.create_task(change_lines())
        await asyncio.sleep(0.5)
        assert not changing.done()  # waiting for the run's lock
        go_on.set()
        await run
        with pytest.raises((Refused, DBAPIError), match=r"can no longer be edited|keeps its rows for good"):
            await changing
    finally:
        await busy.dispose()
    assert (await stored(db, released["id"]))[1] == [(1, "SKU-WATER", 12)]
    await assert_stock_invariants(db)


async def test_edits_racing_a_dispatch_run_are_applied_before_it_or_refused_after_it(
    db_urls, test_settings, db, site
):
    """Each of eight released orders is edited while a run of the site commits: the run reserves for the
    lines as they stood when it took the site's lock, so every edit lands either wholly before the run (its
    new lines are what was reserved for) or after it (refused, the old lines kept with their tasks)."""
    await put_in_stock(db, site, "SKU-WATER", 600)
    await put_in_stock(db, site, "SKU-FLOUR", 600, "A-01-02")
    orders = [await create(db, order(site, ("SKU-WATER", 12), release=True)) for _ in range(8)]
    wanted = order(site, ("SKU-FLOUR", 20), ("SKU-WATER", 6))
    settings = replace(test_settings.database, pool_size=12)
    busy = Database(sqlalchemy_config(db_urls, settings, application_name="test-edits"))

    editor = await actor(db)

    async def try_edit(n, o):  # one every 20 ms: the first ones before the run takes its lock, the last after
        await asyncio.sleep(n * 0.02)
        try:
            return (
                await edit_order(
                    busy, o["id"], wanted, version=None, actor=editor, idempotency_key=f"e{n}", now=LATER
                )
            )[1]
        except Refused as refused:
            return refused

    try:
        results = await asyncio.gather(
            start_dispatch_run(
                busy, site, RunOptions(), expected_inputs=None, actor=RUN_ACTOR, idempotency_key="run",
                now=LATER, inline_max_lines=2000, pick_list_max_tasks=20,
            ),
            *[try_edit(n, o) for n, o in enumerate(orders)],
        )  # fmt: skip
    finally:
        await busy.dispose()
    assert results[0][0] == 201
    async with db.sessions() as s:
        orphans = await s.scalar(
            text("""SELECT count(*) FROM pick_tasks t
                    WHERE NOT EXISTS (SELECT FROM dispatch_order_lines l WHERE l.id = t.order_line_id)""")
        )
        reserved = dict(
            (
                await s.execute(
                    text("""SELECT l.order_id, string_agg(p.sku || ':' || t.quantity, ',' ORDER BY p.sku)
                            FROM pick_tasks t JOIN dispatch_order_lines l ON l.id = t.order_line_id
                            JOIN products p ON p.id = t.product_id GROUP BY l.order_id""")
                )
            ).all()
        )
    assert orphans == 0
    for o, result in zip(orders, results[1:], strict=True):
        _head, lines = await stored(db, o["id"])
        if isinstance(result, Refused):  # the run came first: the old line, and what it reserved for it
            assert "can no longer be edited" in result.message
            assert (lines, reserved[o["id"]]) == ([(1, "SKU-WATER", 12)], "SKU-WATER:12")
        else:  # the edit came first: the run reserved for the new lines
            assert lines == [(1, "SKU-FLOUR", 20), (2, "SKU-WATER", 6)]
            assert reserved.get(o["id"]) in (None, "SKU-FLOUR:20,SKU-WATER:6")
    await assert_stock_invariants(db)
