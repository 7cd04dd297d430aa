"""Reads behind the user-management screens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Site, User


@dataclass(frozen=True)
class UserRow:
    id: UUID
    username: str
    full_name: str
    role: str
    locale: str | None
    is_active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    site_codes: tuple[str, ...]


@dataclass(frozen=True)
class SiteRow:
    id: int
    code: str
    name: str


def _row(user: User) -> UserRow:
    return UserRow(
        user.id,
        user.username,
        user.full_name,
        user.role,
        user.locale,
        user.is_active,
        user.locked_until,
        user.last_login_at,
        tuple(s.code for s in user.sites),
    )


async def users_page(
    session: AsyncSession, search: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[UserRow], int]:
    """Users matching `search` (username or name), by username, with the total count."""
    query = select(User)
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(User.username.like(pattern), func.lower(User.full_name).like(pattern)))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    users = await session.scalars(query.order_by(User.username).limit(limit).offset(offset))
    return [_row(u) for u in users], total


async def user_by_name(session: AsyncSession, username: str) -> UserRow | None:
    user = await session.scalar(select(User).where(User.username == username))
    return _row(user) if user else None


async def all_sites(session: AsyncSession) -> list[SiteRow]:
    rows = await session.execute(select(Site.id, Site.code, Site.name).order_by(Site.code))
    return [SiteRow(*r) for r in rows]


async def site_by_code(session: AsyncSession, code: str) -> SiteRow | None:
    row = (
        await session.execute(select(Site.id, Site.code, Site.name).where(Site.code == code))
    ).one_or_none()
    return SiteRow(*row) if row else None
