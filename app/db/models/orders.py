"""Demand: dispatch orders and their lines."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

ORDER_STATES = ("draft", "released", "allocated", "picking", "picked", "dispatched", "cancelled")
ORDER_SOURCES = ("screen", "import", "api", "demo")


class DispatchOrder(IdentityAuditBase):
    __tablename__ = "dispatch_orders"
    __table_args__ = (
        CheckConstraint(f"state IN {ORDER_STATES}", name="state_known"),
        CheckConstraint(f"source IN {ORDER_SOURCES}", name="source_known"),
        CheckConstraint("priority >= 1", name="priority_positive"),
        CheckConstraint("units >= 0", name="units_not_negative"),
        Index("ix_dispatch_orders_site_state", "site_id", "state"),
        # An order's backorders (its page); few orders have one.
        Index(
            "ix_dispatch_orders_backorder_of",
            "backorder_of",
            postgresql_where=text("backorder_of IS NOT NULL"),
        ),
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    priority: Mapped[int] = mapped_column(default=2)
    due_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    source: Mapped[str] = mapped_column(String(16))
    # Sum of the lines' quantities, kept by whoever writes the lines (same transaction): boards add up
    # units per state on every refresh, and summing every line each time would grow with the order book.
    units: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # The order whose unserved need this one carries (a backorder, made when that order was shipped).
    backorder_of: Mapped[int | None] = mapped_column(
        ForeignKey("dispatch_orders.id", ondelete="RESTRICT"), default=None
    )
    released_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class DispatchOrderLine(IdentityAuditBase):
    """One product of an order. Lines are records once stock was reserved for them: an order is then
    cancelled, its lines never deleted (the database refuses it, and any change of their id: migrations
    20261129_05 and 20261130_01). Until then, correcting the order replaces them."""

    __tablename__ = "dispatch_order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # No upper bound: a product allowed to round up to whole packs may send a little more than ordered.
        # What guards stock is the balances' CHECK (reserved <= on hand), which no run can pass.
        CheckConstraint(
            "allocated >= 0 AND picked >= 0 AND shipped >= 0 AND short_picked >= 0",
            name="progress_not_negative",
        ),
        # Half of each page free: a dispatch run rewrites nearly every line's `allocated` in one
        # transaction, and a new version that fits beside the old one is a HOT update (no index entry).
        {"postgresql_with": {"fillfactor": 50}},
    )
    order_id: Mapped[int] = mapped_column(ForeignKey("dispatch_orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    quantity: Mapped[int] = mapped_column()
    allocated: Mapped[int] = mapped_column(default=0)  # reserved by open pick tasks
    picked: Mapped[int] = mapped_column(default=0)  # at the dispatch dock, not shipped yet
    shipped: Mapped[int] = mapped_column(default=0)
    short_picked: Mapped[int] = mapped_column(default=0)  # units found missing while picking (history)
