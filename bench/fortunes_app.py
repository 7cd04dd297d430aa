"""The baseline: the TechEmpower "fortunes" test as a minimal Litestar + asyncpg + Jinja2 app.

Per request: one `SELECT id, message FROM fortune` through an asyncpg pool, one fortune added in
memory, a sort by message, and an autoescaped Jinja2 HTML table. No middleware, no ORM, no session.
Served by granian exactly like our app (one worker, ASGI): `granian --interface asgi --factory
bench.fortunes_app:create_app`, with the database in BENCH_FORTUNES_DSN (a libpq URL).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from jinja2 import Environment, select_autoescape
from litestar import Litestar, MediaType, Response, get

DSN_ENV = "BENCH_FORTUNES_DSN"
PATH = "/fortunes"
MARKER = "Additional fortune added at request time."

# The 12 rows of the TechEmpower fortune table (id, message), escaping test and UTF-8 included.
FORTUNES: tuple[tuple[int, str], ...] = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
)

TEMPLATE = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>{% endfor %}"
    "</table></body></html>"
)

# Same pool bounds as our app's defaults (DATABASE_POOL_SIZE 5 + DATABASE_MAX_OVERFLOW 5).
POOL_MIN, POOL_MAX = 5, 10


async def install_fortunes(dsn: str) -> None:
    """Create and fill the `fortune` table (idempotent)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)"
        )
        await conn.executemany(
            "INSERT INTO fortune (id, message) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", FORTUNES
        )
    finally:
        await conn.close()


def create_app(dsn: str | None = None) -> Litestar:
    dsn = dsn or os.environ[DSN_ENV]
    template = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(
        TEMPLATE
    )
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX)
        try:
            yield
        finally:
            await pool.close()

    @get(PATH, media_type=MediaType.HTML)
    async def fortunes() -> Response[str]:
        assert pool is not None
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, message FROM fortune")
        items = [(row[0], row[1]) for row in rows]
        items.append((0, MARKER))
        items.sort(key=lambda item: item[1])
        return Response(template.render(fortunes=items), media_type=MediaType.HTML)

    return Litestar(route_handlers=[fortunes], lifespan=[lifespan], debug=False)
