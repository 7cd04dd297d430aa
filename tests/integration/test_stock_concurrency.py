"""Many operators at once on a few hot products: exact stock, no double application, no deadlock shown.

32 tasks send random receipts, transfers and adjustments; every request is sent twice at the same
time with the same idempotency key, as a double tap or a retry after a lost answer would.
"""

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.db.models import IdempotencyKey, StockMovement
from app.db.session import Database, sqlalchemy_config
from app.domain.ledger import MovementKind as K
from app.services.errors import Refused
from app.services.stock import Actor, StockChange, record_stock_change
from tests.integration.stock_fixtures import assert_ledger_equals_balances, make_catalog

TASKS = 32
OPERATIONS_PER_TASK = 70  # 2,240 operations, 4,480 requests
PRODUCTS = ["SKU-WATER", "SKU-FLOUR"]
LOCATIONS = ["A-01-01", "A-01-02", "A-01-03", "B-01-01"]


def random_change(rng: random.Random, site_id: int) -> StockChange:
    product = rng.choice(PRODUCTS)
    roll = rng.random()
    if roll < 0.35:
        return StockChange(K.RECEIPT, site_id, product, rng.randint(1, 20), target=rng.choice(LOCATIONS))
    source, target = rng.sample(LOCATIONS, 2)
    if roll < 0.85:
        return StockChange(K.TRANSFER, site_id, product, rng.randint(1, 15), source=source, target=target)
    return StockChange(K.ADJUSTMENT, site_id, product, rng.randint(1, 5), source=source, reason="damaged")


async def test_concurrent_operators_keep_stock_exact_and_apply_each_request_once(db_urls, test_settings, db):
    site_id = (await make_catalog(db)).site_id
    settings = replace(test_settings.database, pool_size=TASKS, max_overflow=TASKS)
    busy_db = Database(sqlalchemy_config(db_urls, settings, application_name="test-concurrency"))
    acknowledged: dict[str, list[int]] = {}
    refused = 0
    now = datetime.now(UTC)

    async def operator(number: int) -> None:
        nonlocal refused
        rng = random.Random(number)
        actor = Actor(user_id=None, scope=f"operator-{number}")
        for n in range(OPERATIONS_PER_TASK):
            change = random_change(rng, site_id)
            key = f"op-{number}-{n}"
            answers = await asyncio.gather(
                *[
                    record_stock_change(busy_db, change, actor=actor, idempotency_key=key, now=now)
                    for _ in "ab"
                ],
                return_exceptions=True,
            )
            errors = [a for a in answers if isinstance(a, BaseException)]
            if errors:
                assert all(isinstance(e, Refused) and e.status == 409 for e in errors), errors
                assert len(errors) == 2, "a refused request must be refused for both copies"
                assert errors[0].facts == errors[1].facts
                refused += 1
                continue
            assert answers[0] == answers[1], "both copies get the same answer"
            acknowledged[f"{number}:{key}"] = answers[0][1]["movements"]

    try:
        await asyncio.gather(*[operator(i) for i in range(TASKS)])
    finally:
        await busy_db.dispose()

    await assert_ledger_equals_balances(db)
    movement_ids = [m for ids in acknowledged.values() for m in ids]
    async with db.sessions() as s:
        recorded = (await s.scalars(select(StockMovement.id))).all()
        total = await s.scalar(select(func.count()).select_from(StockMovement))
    assert len(movement_ids) == len(set(movement_ids)) == len(acknowledged)
    assert sorted(recorded) == sorted(movement_ids)
    assert total == len(acknowledged)
    assert len(acknowledged) + refused == TASKS * OPERATIONS_PER_TASK
    async with db.sessions() as s:
        stored = (await s.execute(select(IdempotencyKey.status, IdempotencyKey.response))).all()
    named = [m for status, response in stored if status == 201 for m in response["movements"]]
    assert sorted(named) == sorted(recorded), "each stored answer names exactly the movements it made"
    assert sum(status == 409 for status, _ in stored) == refused
    assert refused > 0 and len(acknowledged) > refused  # the mix really exercised both paths
