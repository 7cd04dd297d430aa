"""Test harness: one real PostgreSQL per test session, a fresh database per test.

The server is TEST_DATABASE_URL when set (any PostgreSQL 14+), else a private one from the pgserver
wheel. Migrations and the personas are applied once to a template database; each test gets a copy
(CREATE DATABASE … TEMPLATE), which takes milliseconds instead of a migration run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.db import migrate
from app.db.crypto import configure_keys
from app.db.embedded import embedded_server, ensure_database
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.settings import Settings, load_settings

TEMPLATE = "dispatch_test_template"
TEST_ENV = {
    "APP_ENV": "test",
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Persona:
    username: str
    password: str
    role: str
    sites: tuple[str, ...]
    full_name: str


PERSONAS = {
    "operator": Persona("olivia", "operator-pass-1", "operator", ("LYS",), "Olivia Opérateur"),
    "supervisor": Persona("samir", "supervisor-pass-1", "supervisor", ("LYS", "LIL"), "Samir Superviseur"),
    "admin": Persona("alice", "admin-pass-0001", "admin", (), "Alice Admin"),
    "lille_operator": Persona("lucas", "operator-pass-2", "operator", ("LIL",), "Lucas Lillois"),
}
SITES = (("LYS", "Lyon Saint-Priest"), ("LIL", "Lille Lesquin"))


@pytest.fixture(scope="session")
def server_urls() -> Iterator[DatabaseUrls]:
    """The PostgreSQL server of this test session (an admin connection to its `postgres` database)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield DatabaseUrls.parse(os.environ["TEST_DATABASE_URL"]).with_database("postgres")
        return
    # Not under pytest's private tmp dir: as root, pgserver runs PostgreSQL as another user, who must
    # reach the data folder. A short path also keeps the Unix socket path under its ~100-byte limit.
    var_dir = Path(tempfile.mkdtemp(prefix="sd-test-"))
    var_dir.chmod(0o755)
    try:
        with embedded_server(var_dir, database="postgres") as urls:
            yield urls
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


async def _create_template(urls: DatabaseUrls) -> None:
    admin = await asyncpg.connect(urls.with_database("postgres").libpq)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await admin.close()
    await ensure_database(urls.with_database(TEMPLATE))


async def _seed_personas(urls: DatabaseUrls, settings: Settings) -> None:
    from sqlalchemy import insert

    from app.db.models import Site
    from app.services.users import Actor, UserDraft, create_user

    db = Database(sqlalchemy_config(urls, settings.database, application_name="test-seed"))
    try:
        async with db.transaction() as session:
            await session.execute(insert(Site).values([{"code": c, "name": n} for c, n in SITES]))
        for p in PERSONAS.values():
            await create_user(
                db,
                UserDraft(p.username, p.full_name, p.role, p.sites),
                p.password,
                actor=Actor.system("test"),
                now=datetime.now(UTC),
            )
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    settings = load_settings(TEST_ENV)
    configure_keys(settings.security.data_key, settings.security.data_key_previous)
    return settings


@pytest.fixture(scope="session")
def template_urls(server_urls: DatabaseUrls, test_settings: Settings) -> DatabaseUrls:
    """A migrated database holding the two sites and the personas; every test copies it."""
    urls = server_urls.with_database(TEMPLATE)
    asyncio.run(_create_template(server_urls))
    migrate.upgrade(urls)
    asyncio.run(_seed_personas(urls, test_settings))
    return urls


@pytest.fixture
async def db_urls(template_urls: DatabaseUrls) -> AsyncIterator[DatabaseUrls]:
    """A fresh database for this test, copied from the template."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(template_urls.with_database("postgres").libpq)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    yield template_urls.with_database(name)
    admin = await asyncpg.connect(template_urls.with_database("postgres").libpq)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(db_urls: DatabaseUrls, test_settings: Settings) -> AsyncIterator[Database]:
    database = Database(sqlalchemy_config(db_urls, test_settings.database, application_name="test"))
    yield database
    await database.dispose()


@pytest.fixture
def app(db_urls: DatabaseUrls, test_settings: Settings) -> Litestar:
    return create_app(test_settings, database_url=db_urls.libpq)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as c:
        yield c


@pytest.fixture
def personas() -> dict[str, Persona]:
    return PERSONAS
