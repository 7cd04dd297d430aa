"""A dispatch run can be undone, and a pick list emptied before anyone took it is cancelled.

Revision ID: 20261130_03
Revises: 20261130_02
Create Date: 2026-11-30 11:30:00

A supervisor who committed a run by mistake (the wrong policy, a file imported twice) gives back what it
reserved and nobody is picking yet: those tasks are released, their orders go back to released, and the
run keeps a note of it (`undone`). A list left with no task to pick (its run undone, or its orders
cancelled) is `cancelled`: it leaves the pickers' screens, as it had nothing left for them. Like an open
list, it has nobody holding it. The status column grows to hold the word.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261130_03"
down_revision: str | None = "20261130_02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dispatch_runs", sa.Column("undone", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.alter_column("pick_lists", "status", type_=sa.String(16), existing_type=sa.String(8))
    op.drop_constraint(op.f("ck_pick_lists_status_known"), "pick_lists", type_="check")
    op.drop_constraint(op.f("ck_pick_lists_taken_iff_not_open"), "pick_lists", type_="check")
    op.create_check_constraint(
        op.f("ck_pick_lists_status_known"), "pick_lists", "status IN ('open', 'taken', 'done', 'cancelled')"
    )
    op.create_check_constraint(
        op.f("ck_pick_lists_taken_iff_not_open"),
        "pick_lists",
        "(status IN ('open', 'cancelled')) = (taken_by IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_pick_lists_taken_iff_not_open"), "pick_lists", type_="check")
    op.drop_constraint(op.f("ck_pick_lists_status_known"), "pick_lists", type_="check")
    op.execute("UPDATE pick_lists SET status = 'open' WHERE status = 'cancelled'")  # as they were: empty
    op.create_check_constraint(op.f("ck_pick_lists_status_known"), "pick_lists", "status IN ('open', 'taken', 'done')")
    op.create_check_constraint(
        op.f("ck_pick_lists_taken_iff_not_open"), "pick_lists", "(status = 'open') = (taken_by IS NULL)"
    )
    op.alter_column("pick_lists", "status", type_=sa.String(8), existing_type=sa.String(16))
    op.drop_column("dispatch_runs", "undone")
