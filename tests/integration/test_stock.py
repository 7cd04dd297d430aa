"""Stock changes through the service: exact, refused with the facts, and never applied twice."""

import contextlib
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.db.models import StockMovement
from app.domain.ledger import MovementKind as K
from app.services.errors import Invalid, NotFound, Refused
from app.services.idempotency import KeyReused
from app.services.stock import (
    Actor,
    CountLine,
    NotEnoughStock,
    StockChange,
    count_location,
    record_stock_change,
)
from tests.integration.stock_fixtures import assert_ledger_equals_balances, make_catalog

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ACTOR = Actor(user_id=None, scope="test")


@pytest.fixture
async def site(db):
    return (await make_catalog(db)).site_id


async def change(db, **fields):
    key = fields.pop("key", None) or uuid.uuid4().hex
    return await record_stock_change(db, StockChange(**fields), actor=ACTOR, idempotency_key=key, now=NOW)


async def on_hand(db, sku, location):
    async with db.sessions() as s:
        return await s.scalar(
            text("""
            SELECT coalesce(sum(b.on_hand), 0) FROM stock_balances b JOIN products p ON p.id = b.product_id
            JOIN locations l ON l.id = b.location_id WHERE p.sku = :sku AND l.code = :loc"""),
            {"sku": sku, "loc": location},
        )


async def test_received_stock_can_be_put_away_and_moved(db, site):
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=24, target="QUAI-R1")
    await change(
        db,
        kind=K.PUTAWAY,
        site_id=site,
        product="03760000000017",
        quantity=18,
        source="QUAI-R1",
        target="LOC-LYS-A-01-01",
    )
    status, answer = await change(
        db, kind=K.TRANSFER, site_id=site, product="SKU-WATER", quantity=5, source="A-01-01", target="A-01-02"
    )
    assert status == 201
    assert [b["on_hand"] for b in answer["balances"]] == [13, 5]
    assert (await on_hand(db, "SKU-WATER", "QUAI-R1"), await on_hand(db, "SKU-WATER", "A-01-01")) == (6, 13)
    await assert_ledger_equals_balances(db)


async def test_moving_more_than_there_is_is_refused_with_the_facts_and_changes_nothing(db, site):
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-FLOUR", quantity=4, target="A-01-03")
    with pytest.raises(NotEnoughStock) as refused:
        await change(
            db,
            kind=K.TRANSFER,
            site_id=site,
            product="SKU-FLOUR",
            quantity=6,
            source="A-01-03",
            target="A-01-01",
        )
    assert refused.value.facts == {"location": "A-01-03", "available": 4, "requested": 6}
    assert await on_hand(db, "SKU-FLOUR", "A-01-03") == 4
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(StockMovement)) == 1


async def test_a_replayed_request_returns_the_first_answer_and_applies_once(db, site):
    first = await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=12, target="A-01-01", key="same-key"
    )
    again = await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=12, target="A-01-01", key="same-key"
    )
    assert again == first
    assert await on_hand(db, "SKU-WATER", "A-01-01") == 12


async def test_a_key_reused_for_a_different_request_is_refused(db, site):
    await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=12, target="A-01-01", key="k1"
    )
    with pytest.raises(KeyReused):
        await change(
            db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=13, target="A-01-01", key="k1"
        )


async def test_lot_tracked_products_need_a_lot_and_expiry_tracked_ones_an_expiry(db, site):
    with pytest.raises(Invalid, match="tracked by lot"):
        await change(db, kind=K.RECEIPT, site_id=site, product="SKU-YOG", quantity=12, target="QUAI-R1")
    with pytest.raises(Invalid, match="expiry"):
        await change(
            db, kind=K.RECEIPT, site_id=site, product="SKU-YOG", quantity=12, target="QUAI-R1", lot="L1"
        )
    await change(
        db,
        kind=K.RECEIPT,
        site_id=site,
        product="SKU-YOG",
        quantity=12,
        target="QUAI-R1",
        lot="L1",
        expiry=date(2026, 12, 31),
    )
    with pytest.raises(Invalid, match="expires on"):
        await change(
            db,
            kind=K.RECEIPT,
            site_id=site,
            product="SKU-YOG",
            quantity=1,
            target="QUAI-R1",
            lot="L1",
            expiry=date(2027, 1, 31),
        )
    with pytest.raises(NotFound, match="Unknown lot"):
        await change(
            db,
            kind=K.TRANSFER,
            site_id=site,
            product="SKU-YOG",
            quantity=1,
            source="QUAI-R1",
            target="A-01-01",
            lot="L2",
        )


async def test_an_adjustment_needs_a_reason(db, site):
    with pytest.raises(Invalid, match="reason"):
        await change(db, kind=K.ADJUSTMENT, site_id=site, product="SKU-WATER", quantity=1, target="A-01-01")
    await change(
        db,
        kind=K.ADJUSTMENT,
        site_id=site,
        product="SKU-WATER",
        quantity=3,
        target="A-01-01",
        reason="found on the floor",
    )
    assert await on_hand(db, "SKU-WATER", "A-01-01") == 3


async def test_locations_of_another_site_are_unknown_here(db, site):
    with pytest.raises(NotFound, match="Unknown location"):
        await change(
            db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=1, target="LOC-LIL-A-01-01"
        )


async def test_a_blind_count_posts_the_difference_as_a_count_correction(db, site):
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=10, target="A-01-02")
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-FLOUR", quantity=5, target="A-01-02")
    status, answer = await count_location(
        db,
        site,
        "A-01-02",
        [CountLine("SKU-WATER", None, 8)],
        override=False,
        actor=ACTOR,
        idempotency_key="count-1",
        now=NOW,
    )
    assert status == 201
    assert len(answer["movements"]) == 2  # water -2, and flour not found: -5
    assert (await on_hand(db, "SKU-WATER", "A-01-02"), await on_hand(db, "SKU-FLOUR", "A-01-02")) == (8, 0)
    async with db.sessions() as s:
        kinds = set(
            (await s.scalars(select(StockMovement.kind).where(StockMovement.reason == "count"))).all()
        )
    assert kinds == {"count_correction"}
    await assert_ledger_equals_balances(db)


async def test_a_location_with_pick_work_is_counted_only_with_an_override(db, site):
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=10, target="A-01-02")
    async with db.transaction() as s:
        await s.execute(text("UPDATE stock_balances SET reserved = 4"))
    with pytest.raises(Refused, match="open pick work"):
        await count_location(
            db,
            site,
            "A-01-02",
            [CountLine("SKU-WATER", None, 9)],
            override=False,
            actor=ACTOR,
            idempotency_key="c1",
            now=NOW,
        )
    await count_location(
        db,
        site,
        "A-01-02",
        [CountLine("SKU-WATER", None, 9)],
        override=True,
        actor=ACTOR,
        idempotency_key="c2",
        now=NOW,
    )
    assert await on_hand(db, "SKU-WATER", "A-01-02") == 9


async def test_the_database_refuses_what_must_never_happen(db, site):
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=10, target="A-01-02")
    for statement in (
        "UPDATE stock_movements SET quantity = 99",
        "DELETE FROM stock_movements",
        "UPDATE stock_balances SET on_hand = -1",
        "UPDATE stock_balances SET reserved = on_hand + 1",
    ):
        with pytest.raises(DBAPIError):
            async with db.transaction() as s:
                await s.execute(text(statement))


async def test_idempotency_keys_are_forgotten_after_the_retention(db, site):
    from datetime import timedelta

    from app.services.idempotency import RETENTION, purge_keys

    await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=1, target="A-01-01", key="old"
    )
    assert await purge_keys(db, NOW + RETENTION - timedelta(minutes=1)) == 0
    assert await purge_keys(db, NOW + RETENTION + timedelta(minutes=1)) == 1


async def test_a_replay_gets_its_first_answer_even_when_what_it_named_has_changed_since(db, site):
    # The lookups run before the key's stored answer is read (one round trip with the key's lock): a replay
    # must still return the stored answer, not refuse what has become unknown since.
    first = await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=3, target="A-01-01", key="r1"
    )
    async with db.transaction() as s:
        await s.execute(text("UPDATE products SET is_active = false WHERE sku = 'SKU-WATER'"))
        await s.execute(text("UPDATE locations SET is_active = false WHERE code = 'A-01-01'"))
    again = await change(
        db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=3, target="A-01-01", key="r1"
    )
    assert again == first
    with pytest.raises(NotFound, match="Unknown product"):
        await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=3, target="A-01-01")
    assert await on_hand(db, "SKU-WATER", "A-01-01") == 3


async def test_a_new_lot_is_created_once_and_never_by_a_replay_of_a_refused_receipt(db, site):
    receipt = {"kind": K.RECEIPT, "site_id": site, "product": "SKU-YOG", "quantity": 4, "lot": "L-NEW"}
    dated = {**receipt, "expiry": date(2027, 3, 1)}

    async def lots():
        async with db.sessions() as s:
            return await s.scalar(text("SELECT count(*) FROM lots WHERE code = 'L-NEW'"))

    with pytest.raises(NotFound, match="Unknown location"):
        await change(db, **dated, target="Z-99", key="refused")
    with pytest.raises(NotFound, match="Unknown location"):
        await change(db, **dated, target="Z-99", key="refused")
    assert await lots() == 0
    status, first = await change(db, **dated, target="A-01-01", key="new-lot")
    assert status == 201 and await lots() == 1
    assert await change(db, **dated, target="A-01-01", key="new-lot") == (201, first)
    await change(db, **receipt, target="A-01-02")  # the lot exists now: its expiry is known
    assert await lots() == 1
    assert await on_hand(db, "SKU-YOG", "A-01-01") == 4
    assert await on_hand(db, "SKU-YOG", "A-01-02") == 4
    await assert_ledger_equals_balances(db)


async def test_a_stock_change_leaves_the_connection_planning_as_usual(db, site):
    # The use case asks for generic plans for its own statements only (set_config(..., is_local => true)).
    await change(db, kind=K.RECEIPT, site_id=site, product="SKU-WATER", quantity=3, target="A-01-01")
    async with contextlib.AsyncExitStack() as stack:  # every idle pooled connection at once
        for _ in range(max(db.engine.pool.checkedin(), 1)):  # type: ignore[attr-defined]
            s = await stack.enter_async_context(db.sessions())
            assert await s.scalar(text("SHOW plan_cache_mode")) == "auto"
