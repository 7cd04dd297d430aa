"""The stock record: lots, balances per (product, location, lot), the movement ledger, idempotency keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase, IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

MOVEMENT_KINDS = (
    "receipt",
    "putaway",
    "transfer",
    "adjustment",
    "count_correction",
    "return",
    "pick",
    "dispatch",
)


class Lot(IdentityAuditBase):
    __tablename__ = "lots"
    # Operators scan or type a lot code without its product: the stock search looks lots up by code.
    __table_args__ = (UniqueConstraint("product_id", "code"), Index("ix_lots_code", "code"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date | None] = mapped_column(Date, default=None)


class StockBalance(DefaultBase):
    """On hand and reserved per key, changed only in the transaction that writes the movement."""

    __tablename__ = "stock_balances"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
        # One row per key; lot-less stock has lot_id NULL, which a plain unique constraint would not catch.
        Index("uq_stock_balances_key", "product_id", "location_id", text("coalesce(lot_id, 0)"), unique=True),
        Index("ix_stock_balances_location", "location_id"),
        # Half of each page free, so that a run's `reserved` updates stay HOT (see dispatch_order_lines).
        {"postgresql_with": {"fillfactor": 50}},
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), default=None)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class StockMovement(DefaultBase):
    """One change of stock. Append-only (UPDATE and DELETE are refused): a mistake is a new movement."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(f"kind IN {MOVEMENT_KINDS}", name="kind_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("from_location_id IS NOT NULL OR to_location_id IS NOT NULL", name="has_a_side"),
        CheckConstraint("from_location_id IS DISTINCT FROM to_location_id", name="moves_somewhere"),
        Index("ix_stock_movements_product_time", "product_id", "occurred_at"),
        Index("ix_stock_movements_from_time", "from_location_id", "occurred_at"),
        Index("ix_stock_movements_to_time", "to_location_id", "occurred_at"),
        Index("ix_stock_movements_kind_time", "kind", "occurred_at"),  # boards: activity, throughput
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), default=None)
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    document: Mapped[str | None] = mapped_column(String(64), default=None)
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class IdempotencyKey(DefaultBase):
    """A state-changing request already answered: a replay gets the same answer and changes nothing."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # whose key: a user id
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column()
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
