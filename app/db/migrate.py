"""Schema migrations (Alembic through advanced-alchemy), callable from the CLI and the tests."""

from __future__ import annotations

import asyncio

import asyncpg
from advanced_alchemy.alembic.commands import AlembicCommands

from app.db.session import sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.settings import DatabaseSettings


def _commands(urls: DatabaseUrls) -> AlembicCommands:
    config = sqlalchemy_config(urls, DatabaseSettings(), application_name="dispatch-migrate", pooled=False)
    return AlembicCommands(sqlalchemy_config=config)


def upgrade(urls: DatabaseUrls, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Must not run inside an event loop (Alembic starts its own)."""
    _commands(urls).upgrade(revision=revision)


def downgrade(urls: DatabaseUrls, revision: str) -> None:
    _commands(urls).downgrade(revision=revision)


def current(urls: DatabaseUrls) -> str:
    """The revision the database is at ('' for a database without migrations)."""
    return asyncio.run(_current(urls))


async def _current(urls: DatabaseUrls) -> str:
    connection = await asyncpg.connect(urls.libpq)
    try:
        if not await connection.fetchval("SELECT to_regclass('alembic_versions') IS NOT NULL"):
            return ""
        return ", ".join(
            r["version_num"] for r in await connection.fetch("SELECT version_num FROM alembic_versions")
        )
    finally:
        await connection.close()


def make_revision(urls: DatabaseUrls, message: str) -> None:
    """Autogenerate a draft migration against `urls` (then review it by hand before committing)."""
    _commands(urls).revision(message=message, autogenerate=True)


def head() -> str:
    """The newest revision in the migrations folder."""
    from alembic.script import ScriptDirectory

    from app.db.session import MIGRATIONS_DIR

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or ""
