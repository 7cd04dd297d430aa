"""Large integer arrays sent to PostgreSQL as text.

asyncpg's binary array encoder checks every element with a Python-level `isinstance` call: a dispatch
run's 100,000-element arrays cost about 0.1 s of the event loop's thread that way, and hold the
interpreter lock against the thread that plans beside it. As a text literal, built by `str.join` in C,
the same array costs a few milliseconds, and PostgreSQL parses it as fast. Statements take the
parameter as `$n::text::bigint[]` (or `int[]`).
"""

from __future__ import annotations

from collections.abc import Iterable


def int_array(values: Iterable[int]) -> str:
    """`{1,2,3}`: a PostgreSQL array literal of integers."""
    return "{" + ",".join(map(str, values)) + "}"
