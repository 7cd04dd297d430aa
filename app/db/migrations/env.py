"""Alembic environment: online migrations only, all of one upgrade in one transaction.

PostgreSQL has transactional DDL, so a migration that fails leaves the schema as it was.
"""

import asyncio
from typing import TYPE_CHECKING, cast

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config: "AlembicCommandConfig" = context.config  # type: ignore[assignment]


def do_run_migrations(connection: "Connection") -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata_registry.get(config.bind_key),
        compare_type=True,
        version_table=config.version_table_name,
        transactional_ddl=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = cast("AsyncEngine", config.engine)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `dispatch db upgrade`")
asyncio.run(run_migrations_online())
