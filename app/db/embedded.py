"""The private PostgreSQL used when DATABASE_URL is not set (laptops, tests).

pgserver ships real PostgreSQL 16 binaries; the cluster lives under VAR_DIR/pg and listens on a
Unix socket only (a loopback port on Windows). Several processes may share it: pgserver counts the
handles and the last one to let go stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from pgserver.postgres_server import get_server

from app.db.urls import DatabaseUrls

APP_DATABASE = "dispatch"


@contextlib.contextmanager
def embedded_server(var_dir: Path, database: str = APP_DATABASE) -> Iterator[DatabaseUrls]:
    """Start (or join) the embedded cluster and yield the URLs of `database`, created if missing."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with get_server(var_dir / "pg", cleanup_mode="stop") as server:
        urls = DatabaseUrls.parse(server.get_uri(database))
        asyncio.run(ensure_database(urls))
        yield urls


async def ensure_database(urls: DatabaseUrls) -> bool:
    """Create the database named in `urls` if it does not exist; True when it was created."""
    admin = await asyncpg.connect(urls.with_database("postgres").libpq)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", urls.database_name)
        if exists:
            return False
        await admin.execute(f'CREATE DATABASE "{urls.database_name}"')
        return True
    finally:
        await admin.close()
