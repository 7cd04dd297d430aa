"""Deadlocks are retried inside `Database.run`, whichever layer raised them, and never reach the caller."""

import asyncio

from app.db.session import driver

LOCK = "SELECT pg_advisory_xact_lock($1)"


async def test_a_deadlock_on_the_raw_connection_is_retried_until_both_transactions_commit(db):
    """Two transactions take the same two locks in opposite orders: PostgreSQL kills one, `run` retries it."""
    attempts = {"a": 0, "b": 0}
    both_hold_one = asyncio.Barrier(2)

    def work(name: str, first: int, second: int):
        async def body(session) -> str:
            attempts[name] += 1
            pg = await driver(session)  # asyncpg's own errors, not SQLAlchemy's
            await pg.execute(LOCK, first)
            if attempts[name] == 1:
                await both_hold_one.wait()  # the first time round, each holds one lock: a cycle
            await pg.execute(LOCK, second)
            return name

        return body

    results = await asyncio.gather(db.run(work("a", 1, 2)), db.run(work("b", 2, 1)))
    assert sorted(results) == ["a", "b"]
    assert sorted(attempts.values()) == [1, 2]  # the victim ran once more; the other once
