"""Who may do what, where: sites, users, their sessions and the access journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import IdentityAuditBase, UUIDv7AuditBase, orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

ROLES = ("operator", "supervisor", "admin")
LOCALES = ("fr", "en")

user_sites = Table(
    "user_sites",
    orm_registry.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class Site(IdentityAuditBase):
    """A warehouse."""

    __tablename__ = "sites"
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    # The site's dispatch-run defaults (a run may choose others): app.domain.allocation.Policy / Rounding.
    dispatch_policy: Mapped[str] = mapped_column(String(24), default="proportional")
    dispatch_rounding: Mapped[str] = mapped_column(String(24), default="largest_remainder")
    dispatch_spill: Mapped[bool] = mapped_column(default=False)


class User(UUIDv7AuditBase):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role_known"),
        CheckConstraint(f"locale IS NULL OR locale IN {LOCALES}", name="locale_known"),
        CheckConstraint("username = lower(username)", name="username_lowercase"),
        CheckConstraint("failed_logins >= 0", name="failed_logins_not_negative"),
    )
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    sites: Mapped[list[Site]] = relationship(secondary=user_sites, lazy="selectin", order_by=Site.code)


class AuthSession(UUIDv7AuditBase):
    """One login: a browser session or an API token. Revoking the row ends the session at once."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('browser', 'api')", name="kind_known"),
        Index("ix_auth_sessions_user_open", "user_id", postgresql_where=text("revoked_at IS NULL")),
    )
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    last_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)


class AccessEvent(IdentityAuditBase):
    """Append-only journal of logins, failures and state changes. Never holds a secret."""

    __tablename__ = "access_journal"
    __table_args__ = (
        Index("ix_access_journal_event_ip_time", "event", "ip", "created_at"),
        Index("ix_access_journal_time", "created_at"),
    )
    event: Mapped[str] = mapped_column(String(48))
    # No ON DELETE action: the journal is never rewritten, so a user who acted can only be disabled.
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_name: Mapped[str | None] = mapped_column(String(64), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
