"""A use case survives the database dropping every connection (as a restart does)."""

import asyncpg
from sqlalchemy import text

from app.db.models import Site


async def test_a_use_case_retries_once_on_a_connection_the_database_dropped(db, db_urls):
    async with db.reads() as session:  # warm the pool with a connection the server will drop
        await session.execute(text("SELECT 1"))
    outsider = await asyncpg.connect(db_urls.libpq)
    try:
        dropped = await outsider.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await outsider.close()
    assert dropped >= 1

    async def add_site(session):
        session.add(Site(code="NEW", name="Nouveau site"))
        return "done"

    assert await db.run(add_site) == "done"
    async with db.reads() as session:
        assert await session.scalar(text("SELECT count(*) FROM sites WHERE code = 'NEW'")) == 1


async def test_requests_recover_after_the_database_dropped_every_connection(client, db, db_urls):
    # The session lookup of every request runs on the raw asyncpg connection; a dropped connection must
    # still reach SQLAlchemy, which then replaces the whole pool, and the lookup reads again through a
    # fresh connection: no request fails (none sends its person back to the login page).
    from tests.conftest import PERSONAS
    from tests.integration.stock_fixtures import make_catalog

    await make_catalog(db)
    p = PERSONAS["operator"]
    token = await client.post("/api/v1/auth/token", json={"username": p.username, "password": p.password})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def receipt(key):
        body = {"kind": "receipt", "site": "LYS", "product": "SKU-WATER", "quantity": 1, "to": "A-01-01"}
        answer = await client.post(
            "/api/v1/movements", json=body, headers={**headers, "Idempotency-Key": key}
        )
        return answer.status_code

    for i in range(3):  # several pooled connections, all in use once
        assert (await client.get("/api/v1/stock", headers=headers)).status_code == 200
        assert await receipt(f"before-{i}") == 201
    outsider = await asyncpg.connect(db_urls.libpq)
    try:
        await outsider.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await outsider.close()
    first = (await client.get("/api/v1/stock", headers=headers)).status_code
    after = [await receipt(f"after-{i}") for i in range(4)]
    after += [(await client.get("/api/v1/stock", headers=headers)).status_code for _ in range(4)]
    assert first == 200 and after == [201] * 4 + [200] * 4, (first, after)
