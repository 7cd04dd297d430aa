"""What is stored and where, and who receives it: locations, products, destinations."""

from __future__ import annotations

from decimal import Decimal

from advanced_alchemy.base import IdentityAuditBase
from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.crypto import encrypted_text
from app.db.folding import fold_sql

LOCATION_KINDS = ("storage", "receiving", "dispatch", "quarantine")
DESTINATION_KINDS = ("store", "branch", "customer")


class Location(IdentityAuditBase):
    """A bin of a site, scanned by its barcode and walked in pick-path order."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("site_id", "code"),
        UniqueConstraint("barcode"),
        CheckConstraint(f"kind IN {LOCATION_KINDS}", name="kind_known"),
        Index("ix_locations_site_path", "site_id", "pick_seq"),
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    barcode: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(16))
    pick_seq: Mapped[int] = mapped_column()
    is_active: Mapped[bool] = mapped_column(default=True)


class Product(IdentityAuditBase):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("pack_size >= 1", name="pack_size_positive"),
        CheckConstraint("NOT expiry_tracked OR lot_tracked", name="expiry_implies_lot"),
        CheckConstraint("holdback_units >= 0", name="holdback_not_negative"),
    )
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16), default="unit")
    pack_size: Mapped[int] = mapped_column(default=1)
    lot_tracked: Mapped[bool] = mapped_column(default=False)
    expiry_tracked: Mapped[bool] = mapped_column(default=False)
    round_up_packs: Mapped[bool] = mapped_column(default=False)
    allow_eaches: Mapped[bool] = mapped_column(default=False)  # may a run send loose units below a pack?
    # Units a dispatch run leaves unreserved at each site (safety stock for urgent needs): runs share out
    # what is available beyond them.
    holdback_units: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    # The name as the stock search compares it (app/db/folding.py): folded once per write, not per search.
    search_name: Mapped[str] = mapped_column(Text, Computed(fold_sql("name"), persisted=True))


class ProductBarcode(IdentityAuditBase):
    """A code that identifies a product when scanned: a GTIN of the unit or the case, or an internal code."""

    __tablename__ = "product_barcodes"
    __table_args__ = (
        CheckConstraint("kind IN ('gtin', 'internal')", name="kind_known"),
        CheckConstraint("units >= 1", name="units_positive"),
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(default=1)


class Destination(IdentityAuditBase):
    """A store, branch or customer that receives dispatched stock."""

    __tablename__ = "destinations"
    __table_args__ = (
        CheckConstraint(f"kind IN {DESTINATION_KINDS}", name="kind_known"),
        CheckConstraint("tier >= 1", name="tier_positive"),
        CheckConstraint("min_units IS NULL OR min_units >= 0", name="min_not_negative"),
        CheckConstraint("max_units IS NULL OR max_units >= coalesce(min_units, 0)", name="max_above_min"),
        CheckConstraint(
            "quota_percent IS NULL OR quota_percent BETWEEN 0 AND 100", name="quota_percent_range"
        ),
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    tier: Mapped[int] = mapped_column(default=2)
    min_units: Mapped[int | None] = mapped_column(default=None)
    max_units: Mapped[int | None] = mapped_column(default=None)
    quota_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), default=None)  # quota policy
    # Personal or commercial data: encrypted at rest (app/db/crypto.py), never searched or sorted on.
    address: Mapped[str | None] = mapped_column(encrypted_text(), default=None)
    contact: Mapped[str | None] = mapped_column(encrypted_text(), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
