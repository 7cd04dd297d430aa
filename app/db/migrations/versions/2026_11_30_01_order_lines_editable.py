"""An order's lines may be deleted while nothing was ever reserved for them, so an order can be edited.

Revision ID: 20261130_01
Revises: 20261129_06
Create Date: 2026-11-30 10:30:00

Migration 20261129_05 made order lines records kept for good, so that a run's tasks could name them
without a foreign key's per-row lock: a line a committed task names can never disappear. A draft, or a
released order no run has reserved for yet, is only a request: a supervisor correcting it replaces its
lines. The rule becomes: a line may be deleted while its order is a draft or released and no pick task
names it. TRUNCATE stays refused.

What made the lock-free check sound still holds. A run writes its tasks holding its site's dispatch lock
(`hold_site_dispatch`), from reading the demand to its commit; the delete takes the same lock first, then
looks for tasks with a fresh snapshot (each statement of a PL/pgSQL function takes its own, in READ
COMMITTED). So either the run committed first and the delete sees its tasks and is refused, or the delete
committed first and the run, which reads demand after taking the lock, never saw the line.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261130_01"
down_revision: str | None = "20261129_06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TRIGGER dispatch_order_lines_kept ON dispatch_order_lines")
    op.execute("""
        CREATE TRIGGER dispatch_order_lines_kept BEFORE TRUNCATE ON dispatch_order_lines
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_record_delete()
    """)
    # The lock's key is the one `hold_site_dispatch` takes. An order deleted in the same statement (a
    # cascade) is no longer seen: its lines are then judged by their tasks alone.
    op.execute("""
        CREATE FUNCTION refuse_reserved_line_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            order_state text;
            order_site bigint;
        BEGIN
            SELECT state, site_id INTO order_state, order_site FROM dispatch_orders WHERE id = OLD.order_id;
            IF order_site IS NOT NULL THEN
                PERFORM pg_advisory_xact_lock(hashtextextended('dispatch-run:' || order_site, 0));
            END IF;
            IF order_state NOT IN ('draft', 'released')
               OR EXISTS (SELECT FROM pick_tasks WHERE order_line_id = OLD.id) THEN
                RAISE EXCEPTION 'dispatch_order_lines keeps its rows for good once stock was reserved for '
                                'them (line % of order %)', OLD.id, OLD.order_id
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN OLD;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER dispatch_order_lines_unreserved BEFORE DELETE ON dispatch_order_lines
        FOR EACH ROW EXECUTE FUNCTION refuse_reserved_line_delete()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER dispatch_order_lines_unreserved ON dispatch_order_lines")
    op.execute("DROP FUNCTION refuse_reserved_line_delete()")
    op.execute("DROP TRIGGER dispatch_order_lines_kept ON dispatch_order_lines")
    op.execute("""
        CREATE TRIGGER dispatch_order_lines_kept BEFORE DELETE OR TRUNCATE ON dispatch_order_lines
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_record_delete()
    """)
