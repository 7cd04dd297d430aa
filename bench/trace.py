"""Statements per request and their time in PostgreSQL, logged by the server itself (embedded server only).

For a few sequential requests, `log_min_duration_statement = 0` is switched on (ALTER SYSTEM + reload:
the pooled connections of the running servers pick it up too) with the application name in each log
line; the lines the server wrote meanwhile are then read back from its log. Every round trip counts:
BEGIN, SAVEPOINT and COMMIT, SQLAlchemy's pre-ping (`;`, which never reaches the executor), the session
lookup. A statement is a simple-protocol `statement:` or an extended-protocol `bind` (asyncpg prepares
once per connection, then binds and executes); its time is the sum of its phases (parse, bind,
execute). Run after the measured rounds, so the logging never slows them down, and always switched
off again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db.urls import DatabaseUrls

PREFIX = "%m [%p] %a|"
_LINE = re.compile(r"^\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] (?P<app>[^|]*)\|(?P<level>[A-Z]+):  (?P<text>.*)$")
_PHASE = re.compile(
    r"^duration: (?P<ms>[\d.]+) ms  (?P<phase>statement|parse|bind|execute)(?: [^:]*)?: ?(?P<sql>.*)$"
)


@dataclass(frozen=True)
class Trace:
    label: str
    requests: int
    statements: Counter[str]  # statement (first words) -> times run
    milliseconds: Counter[str]  # statement -> time in PostgreSQL, all phases

    @property
    def per_request(self) -> float:
        return sum(self.statements.values()) / max(self.requests, 1)

    @property
    def ms_per_request(self) -> float:
        return sum(self.milliseconds.values()) / max(self.requests, 1)

    def lines(self, top: int = 20) -> Iterator[str]:
        n = max(self.requests, 1)
        yield (
            f"{self.label}: {self.per_request:.1f} statements per request, {self.ms_per_request:.2f} ms in "
            f"PostgreSQL ({self.requests} sequential requests)"
        )
        yield "  per req    ms/req  statement"
        for sql, count in self.statements.most_common(top):
            yield f"  {count / n:7.2f}  {self.milliseconds[sql] / n:8.3f}  {sql}"


@contextlib.contextmanager
def statement_log(urls: DatabaseUrls) -> Iterator[None]:
    asyncio.run(_configure(urls, on=True))
    time.sleep(0.5)  # backends reload their configuration between commands
    try:
        yield
    finally:
        asyncio.run(_configure(urls, on=False))


async def _configure(urls: DatabaseUrls, *, on: bool) -> None:
    conn = await asyncpg.connect(urls.libpq)
    try:
        if on:
            await conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
            await conn.execute(f"ALTER SYSTEM SET log_line_prefix = '{PREFIX}'")
        else:
            await conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
            await conn.execute("ALTER SYSTEM RESET log_line_prefix")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def trace(log: Path, label: str, application: str, requests: int, send: Callable[[], None]) -> Trace:
    """The statements `application` ran while `send()` made `requests` requests, with their time."""
    start = log.stat().st_size
    send()
    time.sleep(0.3)
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    statements: Counter[str] = Counter()
    milliseconds: Counter[str] = Counter()
    for phase, ms, sql in _phases(text, application):
        milliseconds[sql] += ms
        if phase in ("statement", "bind"):
            statements[sql] += 1
    return Trace(label, requests, statements, milliseconds)


def _phases(text: str, application: str) -> Iterator[tuple[str, float, str]]:
    """(phase, milliseconds, statement) of every logged phase of `application`, in order."""
    current: tuple[str, float, list[str]] | None = None
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:  # a continuation line of a multi-line statement
            if current is not None and line.strip():
                current[2].append(line.strip())
            continue
        if current is not None:
            yield current[0], current[1], _short(current[2])
            current = None
        if match["app"] != application or match["level"] != "LOG":
            continue
        if phase := _PHASE.match(match["text"]):
            sql = phase["sql"].strip()
            current = (phase["phase"], float(phase["ms"]), [sql] if sql else [])
    if current is not None:
        yield current[0], current[1], _short(current[2])


_NUMBER = re.compile(r"(?<![\w$])-?\d+(?:\.\d+)?")


def _short(parts: list[str], width: int = 100) -> str:
    """The statement on one line, literal numbers as N (pgbench's are inlined), cut to `width`."""
    sql = _NUMBER.sub("N", " ".join(" ".join(parts).split()))
    if sql in ("", ";"):
        return "; (empty: SQLAlchemy's pool pre-ping)"
    return sql if len(sql) <= width else sql[: width - 1] + "…"
