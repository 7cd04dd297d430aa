"""Engine and transactions. Services open one transaction per use case through `Database`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.live import CHANNEL, Publisher, take_changes
from app.db.urls import DatabaseUrls
from app.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlalchemy_config(
    urls: DatabaseUrls, settings: DatabaseSettings, application_name: str, *, pooled: bool = True
) -> SQLAlchemyAsyncConfig:
    """The advanced-alchemy configuration shared by the web app, the worker and the migrations."""
    import app.db.models  # noqa: F401  - registers every table on the metadata used by Alembic

    connect_args = {"server_settings": {"application_name": application_name}}
    engine = (
        EngineConfig(
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            # No pre-ping: the asyncpg dialect pings with three round trips (BEGIN, ";", ROLLBACK) on every
            # checkout. A connection broken by a database restart instead fails its first statement, which
            # invalidates the whole pool; `run` retries that once, so a use case never sees it.
            pool_pre_ping=False,
            pool_recycle=3600,
            echo=settings.echo,
            connect_args=connect_args,
        )
        if pooled
        else EngineConfig(poolclass=NullPool, echo=settings.echo, connect_args=connect_args)
    )
    return SQLAlchemyAsyncConfig(
        connection_string=urls.sqlalchemy,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        engine_config=engine,
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            script_config="",
            version_table_name="alembic_versions",
        ),
    )


T = TypeVar("T")
RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class Busy(Exception):
    """Conflicting transactions kept colliding; nothing was changed."""


class Database:
    """The process's engine, plus the one way services get a transaction."""

    def __init__(self, config: SQLAlchemyAsyncConfig) -> None:
        self.config = config
        self.engine: AsyncEngine = config.get_engine()
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside a use case need no transaction: autocommit spares the BEGIN/ROLLBACK round trips
        # on every page and on the session lookup of every request. Same pool, other execution options.
        self.reads = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

        # Live boards have a small pool of their own, for their NOTIFYs (the events of committed
        # transactions, coalesced: app/db/live.py) and their drawings (once per change per process, however
        # many boards are open): behind the requests queued for a busy pool, every board would be late.
        self.live_engine = create_async_engine(
            self.engine.url,
            pool_size=3,
            max_overflow=0,
            pool_recycle=3600,
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"application_name": "dispatch-live-lane"}},
        )
        self.live_reads = async_sessionmaker(self.live_engine, expire_on_commit=False)
        self.live = Publisher(self._notify)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        What the transaction marked with `live.changed` is published once it has committed, never before
        (a board must not show a change that may still roll back) and never for a rolled-back attempt.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            self.live.publish(take_changes(session))

    async def _notify(self, payload: str) -> None:
        async with self.live_engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
            )

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run `work` in one transaction, retried with backoff after a deadlock or serialization error.

        PostgreSQL picks a victim when transactions conflict; retrying it is the documented remedy. A
        retry that still fails raises `Busy`, and the transaction it ran in was rolled back whole.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except (DBAPIError, asyncpg.PostgresError) as error:
                if isinstance(error, DBAPIError) and error.connection_invalidated and attempt == 1:
                    continue  # a connection the database dropped (restart): the pool is fresh now
                # Statements on the raw asyncpg connection (`driver`) raise asyncpg's own errors.
                if _sqlstate(error) not in RETRYABLE:
                    raise
                if attempt == attempts:
                    raise Busy() from error
                await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
        raise AssertionError("unreachable")

    async def forget_connections(self) -> None:
        """Drop every idle pooled connection: the database went away (a restart), and they died with it.

        Without pre-ping a dead connection fails the first statement of whoever takes it; the live-event
        listener notices the loss at once (app/web/live.py), so the process drops them before then.
        Connections in use are replaced as they come back.
        """
        await self.engine.dispose(close=False)
        await self.live_engine.dispose(close=False)

    async def dispose(self) -> None:
        await self.live.flush()
        await self.live_engine.dispose()
        await self.engine.dispose()


class Unstorable(StrEnum):
    """Why the database cannot store a value a request carried."""

    TEXT = "text"  # a NUL character (no PostgreSQL text holds one), half of a surrogate pair
    NUMBER = "number"  # beyond its column's type, or a sum beyond it


# SQLSTATEs of values PostgreSQL refuses to store.
_UNSTORABLE = {"22021": Unstorable.TEXT, "22P05": Unstorable.TEXT, "22003": Unstorable.NUMBER}


def unstorable_value(error: BaseException) -> Unstorable | None:
    """What `error` says the database could not store, if that is what it says: a bad request, not a
    fault of ours; else None.

    PostgreSQL refuses some values (a NUL character, an overflowing sum); asyncpg refuses others before
    sending them (an integer beyond its parameter's type, half of a surrogate pair) with the encoder's
    error as the cause. SQLAlchemy wraps either: the chain is followed through `orig` and `__cause__`.
    """
    seen: BaseException | None = error
    while seen is not None:
        if (kind := _UNSTORABLE.get(getattr(seen, "sqlstate", None) or "")) is not None:
            return kind
        if isinstance(seen, asyncpg.DataError):  # raised by asyncpg's encoder, before sending, with its cause
            if isinstance(seen.__cause__, OverflowError):
                return Unstorable.NUMBER
            if isinstance(seen.__cause__, UnicodeError):
                return Unstorable.TEXT
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _sqlstate(error: Exception) -> str | None:
    """The SQLSTATE of a database error, whether SQLAlchemy wrapped it or asyncpg raised it."""
    return getattr(getattr(error, "orig", error), "sqlstate", None)


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under `session`, inside its transaction: for hot paths (stock changes, search).

    asyncpg's own prepared statements cost about a tenth of a statement through the ORM session. The
    transaction is begun here if SQLAlchemy has not sent its BEGIN yet (it does so lazily), so raw
    statements are never outside the use case's transaction; autocommit read sessions stay autocommit.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapter = raw.dbapi_connection
    if adapter is not None and adapter._transaction is None:
        await adapter._start_transaction()
    return raw.driver_connection
