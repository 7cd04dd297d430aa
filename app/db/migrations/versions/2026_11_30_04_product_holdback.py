"""Products keep back units from dispatch runs (safety stock).

Revision ID: 20261130_04
Revises: 20261130_03
Create Date: 2026-11-30 12:00:00

PRODUCT.md splits "S units of a product at the site (after any holdback)": the allocation engine has
always taken a holdback, but no product could say one. `holdback_units` is the number of units a run
leaves unreserved at each site, for urgent needs the day's runs must not take.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_04"
down_revision: str | None = "20261130_03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("holdback_units", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint(op.f("ck_products_holdback_not_negative"), "products", "holdback_units >= 0")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_products_holdback_not_negative"), "products", type_="check")
    op.drop_column("products", "holdback_units")
