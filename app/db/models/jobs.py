"""Background work: the job-request outbox, worker heartbeats and the queue round-trip check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import DefaultBase, IdentityAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

JOB_REQUEST_CHANNEL = "job_requests"


class JobRequest(IdentityAuditBase):
    """A job asked for inside a business transaction; the worker relays it to SAQ after commit."""

    __tablename__ = "job_requests"
    __table_args__ = (Index("ix_job_requests_unrelayed", "id", postgresql_where=text("relayed_at IS NULL")),)
    function: Mapped[str] = mapped_column(String(64))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    relayed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)


class WorkerHeartbeat(DefaultBase):
    """The last sign of life of each worker process, read by /health/ready."""

    __tablename__ = "worker_heartbeats"
    worker_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    beat_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class JobPing(IdentityAuditBase):
    """One execution of the `ping` job: proves the outbox → queue → worker path end to end."""

    __tablename__ = "job_pings"
    request_id: Mapped[int] = mapped_column(ForeignKey("job_requests.id", ondelete="CASCADE"), index=True)
    worker_id: Mapped[str] = mapped_column(String(96))
