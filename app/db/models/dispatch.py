"""Dispatch: allocation runs and their explanations, pick tasks and lists, shipments."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase, IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

RUN_STATUSES = ("queued", "running", "committed", "stale", "failed")
TASK_STATUSES = ("open", "picked", "short", "released")
# A list is cancelled when every task left on it was given back before anyone took it (its orders
# cancelled, or its run undone): nothing is left to pick, so it leaves the pickers' screens.
LIST_STATUSES = ("open", "taken", "done", "cancelled")


class DispatchRun(IdentityAuditBase):
    """One committed (or requested) allocation of a site's released demand. Previews are never stored.

    Runs are history: the database refuses to delete them or change their id (migration 20261129_05).
    """

    __tablename__ = "dispatch_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status_known"),
        CheckConstraint("progress_done >= 0 AND progress_done <= progress_total", name="progress_bounded"),
        Index("ix_dispatch_runs_site_time", "site_id", "created_at"),
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    policy: Mapped[str] = mapped_column(String(24))
    rounding: Mapped[str] = mapped_column(String(24))
    spill: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # What the supervisor previewed (demand and stock fingerprint): a commit on other inputs is refused.
    inputs_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    phase: Mapped[str] = mapped_column(String(16), default="queued")  # for the progress bar
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    # Figures of the result (lines, products, destinations, units asked and allocated, picks, lists).
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)  # a stored refusal
    # The run's cut-off: only orders due by then took part (None: every open order).
    due_by: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Undone by a supervisor: when, by whom, the tasks and units given back, the lists kept (being picked).
    undone: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class DispatchRunLine(DefaultBase):
    """The explanation of one destination's share of one product in a committed run.

    A historical record written 100,000 rows at a time. Its run is checked once per statement (a
    trigger of migrations 20261129_05 and 06; runs are never deleted), not row by row as a foreign key would.
    Products and destinations are never deleted (only deactivated), so their ids stay valid unchecked.
    """

    __tablename__ = "dispatch_run_lines"
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    destination_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tier: Mapped[int] = mapped_column()
    need_units: Mapped[int] = mapped_column()
    min_units: Mapped[int | None] = mapped_column(default=None)
    max_units: Mapped[int | None] = mapped_column(default=None)
    pack_size: Mapped[int] = mapped_column()
    quota_numerator: Mapped[int] = mapped_column(BigInteger)
    quota_denominator: Mapped[int] = mapped_column(BigInteger)
    packs: Mapped[int] = mapped_column()
    eaches: Mapped[int] = mapped_column()
    units: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(24))


class PickList(IdentityAuditBase):
    """Pick tasks of one zone, walked in pick-path order by one operator.

    Kept for good, like runs and order lines: the database refuses to delete lists or change their id
    (migration 20261129_05), which is what lets it check a run's tasks per statement.
    """

    __tablename__ = "pick_lists"
    __table_args__ = (
        CheckConstraint(f"status IN {LIST_STATUSES}", name="status_known"),
        CheckConstraint("(status IN ('open', 'cancelled')) = (taken_by IS NULL)", name="taken_iff_not_open"),
        Index("ix_pick_lists_site_status", "site_id", "status"),
        Index("ix_pick_lists_site_done", "site_id", "done_at"),  # boards: lists finished today
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    run_id: Mapped[int] = mapped_column(ForeignKey("dispatch_runs.id", ondelete="RESTRICT"), index=True)
    zone: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    taken_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    taken_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    done_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)  # or cancelled


class PickTask(DefaultBase):
    """A reservation: `quantity` of a product, in one lot at one location, for one order line.

    While open, its quantity is part of the balance's `reserved`. Picking moves what was found to the
    dispatch dock (a `pick` movement); what was not found is released and the order line needs it again.

    Runs write tasks 100,000 at a time, and per-row foreign-key checks were most of that time. Its list
    and order line are checked once per insert statement instead (a trigger of migrations 20261129_05 and 06;
    lists and order lines are never deleted, and a task's references never change). The other ids are
    held by rows that already check them: the run by the task's list, the product by the order line,
    and (product, location, lot) by the balance the task reserves on (reserved = open tasks per
    balance, an invariant the tests check).
    """

    __tablename__ = "pick_tasks"
    __table_args__ = (
        CheckConstraint(f"status IN {TASK_STATUSES}", name="status_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("picked >= 0 AND short >= 0", name="progress_not_negative"),
        CheckConstraint(
            "(status = 'open' AND picked = 0 AND short = 0)"
            " OR (status IN ('picked', 'short') AND picked + short = quantity)"
            " OR (status = 'released' AND picked = 0 AND short = 0)",
            name="progress_matches_status",
        ),
        Index("ix_pick_tasks_list_path", "pick_list_id", "pick_seq"),
        Index("ix_pick_tasks_order_line", "order_line_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)  # not indexed: no query looks tasks up by run
    pick_list_id: Mapped[int] = mapped_column(BigInteger)
    order_line_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    location_id: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    pick_seq: Mapped[int] = mapped_column()  # the location's place on the pick path, copied for ordering
    quantity: Mapped[int] = mapped_column()
    picked: Mapped[int] = mapped_column(default=0)
    short: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(8), default="open")
    done_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    done_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Shipment(IdentityAuditBase):
    """Picked lines of one destination closed into one dispatch, with its delivery note and labels."""

    __tablename__ = "shipments"
    __table_args__ = (
        CheckConstraint("parcels >= 1", name="parcels_positive"),
        Index("ix_shipments_site_time", "site_id", "created_at"),
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="RESTRICT"))
    parcels: Mapped[int] = mapped_column(default=1)
    units: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)


class ShipmentLine(DefaultBase):
    __tablename__ = "shipment_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # What was shipped of an order line: closing a shipment, an order's page, and the key's check when
        # an order line is deleted (an order edited).
        Index("ix_shipment_lines_order_line", "order_line_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("dispatch_order_lines.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), default=None)
    quantity: Mapped[int] = mapped_column()
