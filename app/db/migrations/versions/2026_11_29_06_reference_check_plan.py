"""The per-statement reference check lets PostgreSQL plan the whole anti-join, not one probe per row.

Revision ID: 20261129_06
Revises: 20261129_05
Create Date: 2026-11-30 01:00:00

Migration 20261129_05 checks the references of a run's inserted tasks and explanation rows with one
anti-join per statement, asked as `... WHERE NOT EXISTS (...) LIMIT 1`. The LIMIT made the planner
expect an early hit and choose a nested loop: one probe of the parent's index (and heap) per inserted
row, 0.78 s for a run's 98,999 tasks (0.6 s of it for their order lines). Asking for the smallest
missing id instead (an aggregate, no LIMIT) lets it weigh the whole statement: a hash anti-join for a
large run (0.21 s for the same tasks), index probes still for a handful of rows. Same refusal, same
error code; only the message names the smallest missing id rather than the first one met.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261129_06"
down_revision: str | None = "20261129_05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
    CREATE OR REPLACE FUNCTION check_references() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        i integer := 0;
        missing bigint;
    BEGIN
        WHILE i < TG_NARGS LOOP
            EXECUTE format({query}, TG_ARGV[i], TG_ARGV[i + 1]) INTO missing;
            IF missing IS NOT NULL THEN
                RAISE EXCEPTION 'insert into % refused: % % is not in %',
                    TG_TABLE_NAME, TG_ARGV[i], missing, TG_ARGV[i + 1]
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            i := i + 2;
        END LOOP;
        RETURN NULL;
    END $$
"""
_SMALLEST_MISSING = (
    "'SELECT min(r.%1$I) FROM inserted r WHERE NOT EXISTS (SELECT FROM %2$I p WHERE p.id = r.%1$I)'"
)
_FIRST_MISSING = (
    "'SELECT r.%1$I FROM inserted r WHERE NOT EXISTS '\n"
    "'(SELECT FROM %2$I p WHERE p.id = r.%1$I) LIMIT 1'"
)


def upgrade() -> None:
    op.execute(_FUNCTION.format(query=_SMALLEST_MISSING))


def downgrade() -> None:
    op.execute(_FUNCTION.format(query=_FIRST_MISSING))
