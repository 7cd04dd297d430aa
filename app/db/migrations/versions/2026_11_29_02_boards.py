"""Live boards: indexes for the activity feed, the throughput chart and today's pick lists.

Revision ID: 20261129_02
Revises: 20261129_01
Create Date: 2026-11-29 11:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '20261129_02'
down_revision: str | None = '20261129_01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_stock_movements_kind_time', 'stock_movements', ['kind', 'occurred_at'], unique=False)
    op.create_index('ix_pick_lists_site_done', 'pick_lists', ['site_id', 'done_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pick_lists_site_done', table_name='pick_lists')
    op.drop_index('ix_stock_movements_kind_time', table_name='stock_movements')
