"""The bench database: embedded PostgreSQL (or BENCH_DATABASE_URL), migrated, with demo data, a
supervisor to log in as, and the baseline's `fortune` table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import select, text

from app.db import migrate
from app.db.embedded import embedded_server
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.settings import DatabaseSettings
from bench.fortunes_app import install_fortunes

URL_ENV = "BENCH_DATABASE_URL"
DATABASE = "dispatch_bench"
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password-1"  # a throwaway account of a throwaway database

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchDatabase:
    urls: DatabaseUrls
    postmaster_pid: int | None  # known for the embedded server only (to count its CPU time)
    server_log: Path | None = None  # the embedded server's log (to count statements per request)


@contextlib.contextmanager
def bench_database(log: Log) -> Iterator[BenchDatabase]:
    """BENCH_DATABASE_URL as is, or an embedded PostgreSQL in a temporary folder, removed afterwards."""
    if os.environ.get(URL_ENV):
        urls = DatabaseUrls.parse(os.environ[URL_ENV])
        log(f"database: {urls.safe} (from {URL_ENV})")
        yield BenchDatabase(urls, None)
        return
    # A short path: the Unix socket path of PostgreSQL must stay under ~100 characters.
    var_dir = Path(tempfile.mkdtemp(prefix="sdbench-"))
    try:
        log(f"database: embedded PostgreSQL in {var_dir}")
        with embedded_server(var_dir, database=DATABASE) as urls:
            yield BenchDatabase(urls, _postmaster_pid(var_dir / "pg"), var_dir / "pg" / "log")
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def prepare(urls: DatabaseUrls, seed: int, log: Log) -> None:
    """Migrate, load demo data if the database has none, (re)create the bench user, install fortunes."""
    migrate.upgrade(urls)
    asyncio.run(_fill(urls, seed, log))


async def _fill(urls: DatabaseUrls, seed: int, log: Log) -> None:
    await _demo(urls, seed, log)
    db = Database(sqlalchemy_config(urls, DatabaseSettings(), application_name="bench-seed"))
    try:
        await _bench_user(db)
        async with db.sessions() as session:
            counts = {
                table: await session.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("sites", "locations", "products", "dispatch_orders", "dispatch_order_lines")
            }
        log("data: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    finally:
        await db.dispose()
    await install_fortunes(urls.libpq)
    await analyze(urls)


async def analyze(urls: DatabaseUrls) -> None:
    """Fresh planner statistics, so plans do not change mid-run when autovacuum gets to the new rows."""
    conn = await asyncpg.connect(urls.libpq)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _demo(urls: DatabaseUrls, seed: int, log: Log) -> None:
    from app.services.demo import demo_loaded, load_demo

    if await demo_loaded(urls):
        log("demo data: the database already holds sites, kept as is")
        return
    counts = await load_demo(urls, seed=seed)
    log("demo data loaded: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


async def _bench_user(db: Database) -> None:
    """A supervisor of every site (the widest pipeline), with a known password and no open session."""
    from app.db.models import Site, User
    from app.services.users import Actor, UserDraft, create_user, set_password, update_user

    async with db.sessions() as session:
        codes = tuple((await session.scalars(select(Site.code).order_by(Site.code))).all())
        exists = await session.scalar(select(User.id).where(User.username == BENCH_USER))
    draft = UserDraft(BENCH_USER, "Bench Supervisor", "supervisor", codes)
    now, actor = datetime.now(UTC), Actor.system("bench")
    if exists:
        await update_user(db, BENCH_USER, draft, actor=actor, now=now)
        await set_password(db, BENCH_USER, BENCH_PASSWORD, actor=actor, now=now)
    else:
        await create_user(db, draft, BENCH_PASSWORD, actor=actor, now=now)
