"""Loading the demo data into a real PostgreSQL: complete, once only, and no plain password stored."""

from datetime import date

import asyncpg
import pytest
from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.services.demo import DEMO_ACCOUNTS, demo_loaded, load_demo
from app.services.demo_data import generate_demo
from app.services.demo_stock import opening_stock
from app.services.errors import Refused
from app.services.passwords import verify_password
from app.settings import DatabaseSettings
from tests.integration.stock_fixtures import assert_ledger_equals_balances

SEED = 20261125
TODAY = date(2026, 11, 25)
TABLES = {
    "sites": "sites",
    "locations": "locations",
    "products": "products",
    "barcodes": "product_barcodes",
    "destinations": "destinations",
    "orders": "dispatch_orders",
    "lines": "dispatch_order_lines",
    "users": "users",
    "user_sites": "user_sites",
}


@pytest.fixture
async def empty_db_urls(db_urls: DatabaseUrls) -> DatabaseUrls:
    """The test database without the sites and personas the shared harness seeds into it.

    Demo data only goes into a database without sites. DELETE, not TRUNCATE: the access journal is
    append-only and refuses TRUNCATE ... CASCADE. The seeded journal rows name no user id, so the users go.
    """
    conn = await asyncpg.connect(db_urls.libpq)
    try:
        await conn.execute("DELETE FROM users; DELETE FROM sites")
    finally:
        await conn.close()
    return db_urls


async def _counts(urls: DatabaseUrls) -> dict[str, int]:
    conn = await asyncpg.connect(urls.libpq)
    try:
        return {kind: await conn.fetchval(f"SELECT count(*) FROM {table}") for kind, table in TABLES.items()}
    finally:
        await conn.close()


async def test_demo_loads_everything_the_generator_makes(empty_db_urls):
    data = generate_demo(SEED, TODAY)
    assert not await demo_loaded(empty_db_urls)

    counts = await load_demo(empty_db_urls, seed=SEED, today=TODAY)

    expected = {
        "sites": len(data.sites),
        "locations": len(data.locations),
        "products": len(data.products),
        "barcodes": sum(len(p.barcodes) for p in data.products),
        "destinations": len(data.destinations),
        "orders": len(data.orders),
        "lines": sum(len(o.lines) for o in data.orders),
        "users": len(data.users),
    }
    stock = opening_stock(data, SEED, TODAY)
    run = {kind: counts.pop(kind) for kind in ("dispatch_runs", "pick_tasks", "picks", "shipments")}
    assert counts == {**expected, "stock_movements": len(stock)}  # every line starts from nothing
    assert run["dispatch_runs"] == 1 and run["pick_tasks"] > 0  # Lyon's first run, committed
    assert run["picks"] > 0 and run["shipments"] == 1  # then Paul's morning: picks and a shipment
    in_db = await _counts(empty_db_urls)
    assert {kind: in_db[kind] for kind in expected} == expected
    database = Database(sqlalchemy_config(empty_db_urls, DatabaseSettings(), application_name="test-demo"))
    try:
        await assert_ledger_equals_balances(database)
        async with database.sessions() as session:
            expired = await session.scalar(
                text("SELECT count(*) FROM lots WHERE expiry < :today"), {"today": TODAY}
            )
    finally:
        await database.dispose()
    assert expired > 0, "the demo shows what an expired lot looks like"
    assert in_db["user_sites"] == sum(len(u.site_codes) for u in data.users)
    assert await demo_loaded(empty_db_urls)


async def test_a_second_load_is_refused_and_changes_nothing(empty_db_urls):
    await load_demo(empty_db_urls, seed=SEED, today=TODAY)
    before = await _counts(empty_db_urls)

    with pytest.raises(Refused, match="already loaded"):
        await load_demo(empty_db_urls, seed=SEED + 1, today=TODAY)

    assert await _counts(empty_db_urls) == before


async def test_demo_rows_link_up_and_keep_no_plain_password(empty_db_urls):
    await load_demo(empty_db_urls, seed=SEED, today=TODAY)
    username, password, role = next(account for account in DEMO_ACCOUNTS if account[2] == "admin")
    conn = await asyncpg.connect(empty_db_urls.libpq)
    try:
        admin = await conn.fetchrow(
            "SELECT role, password_hash, is_active FROM users WHERE username = $1", username
        )
        leaked = await conn.fetchval(
            "SELECT count(*) FROM users WHERE password_hash = ANY($1::text[])",
            [plain for _, plain, _ in DEMO_ACCOUNTS],
        )
        unit_case = await conn.fetchval(
            "SELECT count(*) FROM product_barcodes b JOIN products p ON p.id = b.product_id "
            "WHERE b.units <> 1 AND b.units <> p.pack_size"
        )
        missing_times = await conn.fetchval("SELECT count(*) FROM dispatch_orders WHERE created_at IS NULL")
        states = dict(await conn.fetch("SELECT state, count(*) FROM dispatch_orders GROUP BY state"))
        unreleased = await conn.fetchval(
            "SELECT count(*) FROM dispatch_orders WHERE (state = 'draft') = (released_at IS NOT NULL)"
        )
        progress = dict(
            await conn.fetch(
                "SELECT s.code, count(*) FROM dispatch_order_lines l "
                "JOIN dispatch_orders o ON o.id = l.order_id JOIN sites s ON s.id = o.site_id "
                "WHERE l.allocated + l.picked + l.shipped + l.short_picked > 0 GROUP BY s.code"
            )
        )
        lists = await conn.fetchval("SELECT count(*) FROM pick_lists WHERE status = 'open'")
        held = await conn.fetch(
            "SELECT u.username FROM pick_lists pl JOIN users u ON u.id = pl.taken_by "
            "WHERE pl.status = 'taken'"
        )
        shipped = await conn.fetchval("SELECT count(*) FROM shipments")
    finally:
        await conn.close()
    assert admin["role"] == role
    assert admin["is_active"]
    assert admin["password_hash"].startswith("$argon2id$")
    assert password not in admin["password_hash"]
    assert await verify_password(password, admin["password_hash"])
    assert leaked == 0
    assert unit_case == 0
    assert missing_times == 0
    # Demand consistent with the stock, and Lyon's first run committed: its orders allocated (some only
    # partly), pick lists waiting for its operators; Paul's first lists picked, one list in his hands,
    # a first shipment gone (its orders dispatched, or still picking what is left).
    assert (
        {"draft", "released", "allocated", "picking"}
        <= set(states)
        <= {"draft", "released", "allocated", "picking", "picked", "dispatched"}
    )
    assert unreleased == 0
    assert set(progress) == {"LYS"} and lists > 0
    assert [row["username"] for row in held] == ["paul"] and shipped == 1
