"""A dispatch run may be cut off at a due time: only orders due by then take part.

Revision ID: 20261130_05
Revises: 20261130_04
Create Date: 2026-11-30 12:30:00

Short stock is shared between the orders a run takes. Without a cut-off, orders due next week get a
share of what today's need. The run keeps the cut-off it was given, for its history and for the worker
that commits a queued run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_05"
down_revision: str | None = "20261130_04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dispatch_runs", sa.Column("due_by", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("dispatch_runs", "due_by")
