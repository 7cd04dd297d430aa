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
