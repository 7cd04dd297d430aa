"""Indexes to find what was shipped of an order line, and an order's backorders.

Revision ID: 20261130_02
Revises: 20261130_01
Create Date: 2026-11-30 11:00:00

Closing a shipment reads what was already shipped of the lines it closes (`shipment_lines` by
`order_line_id`), and so does the foreign key's check when an order line is deleted (an order edited):
both scanned the whole table, which grows by every line ever shipped. An order's page now lists its
shipments and its backorders (`dispatch_orders` by `backorder_of`, partial: few orders are backorders).
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "20261130_02"
down_revision: str | None = "20261130_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_shipment_lines_order_line", "shipment_lines", ["order_line_id"])
    op.create_index(
        "ix_dispatch_orders_backorder_of",
        "dispatch_orders",
        ["backorder_of"],
        postgresql_where=text("backorder_of IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dispatch_orders_backorder_of", table_name="dispatch_orders")
    op.drop_index("ix_shipment_lines_order_line", table_name="shipment_lines")
