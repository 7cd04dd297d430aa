"""Index lots by code: the stock search finds a scanned lot without knowing its product.

Revision ID: 20261125_04
Revises: 20261125_03
Create Date: 2026-11-25 09:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261125_04"
down_revision: str | None = "20261125_03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_lots_code", "lots", ["code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_lots_code", table_name="lots")
