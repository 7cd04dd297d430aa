"""The reviewed migrations build exactly the schema the models describe, and undo cleanly."""

import asyncio

import asyncpg
import pytest
from advanced_alchemy.base import orm_registry
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import app.db.models  # noqa: F401 - registers the tables
from app.db import migrate


def _diff(urls):
    engine = create_engine(urls.sqlalchemy.replace("+asyncpg", "+psycopg"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _parent: (
                        not (kind == "table" and name == "alembic_versions")
                    ),
                },
            )
            return compare_metadata(context, orm_registry.metadata)
    finally:
        engine.dispose()


@pytest.fixture
def scratch_urls(template_urls):
    name = "t_migrations"
    admin_url = template_urls.with_database("postgres").libpq

    async def run(sql):
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield template_urls.with_database(name)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migrations_match_the_models_and_downgrade_to_nothing(scratch_urls):
    migrate.upgrade(scratch_urls)
    assert _diff(scratch_urls) == []
    migrate.downgrade(scratch_urls, "base")
    assert migrate.current(scratch_urls) == ""
    migrate.upgrade(scratch_urls)
    assert migrate.current(scratch_urls) == migrate.head()


async def test_the_access_journal_refuses_rewrites(db):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO access_journal (event, detail, created_at, updated_at) "
                "VALUES ('test', '{}', now(), now())"
            )
        )
    for statement in (
        "UPDATE access_journal SET event = 'x'",
        "DELETE FROM access_journal",
        "TRUNCATE access_journal CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as s:
                await s.execute(text(statement))
