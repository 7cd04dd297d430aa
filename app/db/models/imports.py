"""Imported files: each upload is a batch, validated whole and written whole, or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

IMPORT_KINDS = ("products", "locations", "stock", "orders")
IMPORT_STATUSES = ("queued", "running", "done", "failed")


class ImportBatch(IdentityAuditBase):
    """One uploaded file: its progress, then either its counts (done) or its errors (failed)."""

    __tablename__ = "import_batches"
    __table_args__ = (
        CheckConstraint(f"kind IN {IMPORT_KINDS}", name="kind_known"),
        CheckConstraint(f"status IN {IMPORT_STATUSES}", name="status_known"),
        CheckConstraint("processed_rows >= 0", name="processed_not_negative"),
        Index("ix_import_batches_created", "created_at"),
    )
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    total_rows: Mapped[int | None] = mapped_column(default=None)  # an estimate until the file is read
    processed_rows: Mapped[int] = mapped_column(default=0)
    # [{"row", "column", "message", "facts"}]: English msgids with their facts, translated when shown.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    # The file itself, kept only until it is processed (the worker reads it from here).
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
