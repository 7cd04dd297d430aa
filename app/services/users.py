"""Managing the people who use the tool: accounts, roles, sites, passwords."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Site, User
from app.db.session import Database
from app.domain.access import Principal, Role
from app.services import journal
from app.services.auth import revoke_sessions
from app.services.errors import Invalid, NotFound
from app.services.passwords import MIN_LENGTH, hash_password, password_problem

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class UserDraft:
    """What an admin fills in for a user (everything but the password)."""

    username: str
    full_name: str
    role: str
    site_codes: tuple[str, ...]
    locale: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the journal."""

    user_id: UUID | None
    username: str
    ip: str | None = None

    @classmethod
    def of(cls, principal: Principal, ip: str | None) -> Actor:
        return cls(principal.user_id, principal.username, ip)

    @classmethod
    def system(cls, name: str = "cli") -> Actor:
        return cls(None, name)


def _validate(draft: UserDraft) -> UserDraft:
    username = draft.username.strip().lower()
    if not USERNAME.match(username):
        raise Invalid(
            "A username has 2 to 64 characters: letters, digits, dot, dash or underscore.", field="username"
        )
    full_name = " ".join(draft.full_name.split())
    if not full_name or len(full_name) > 120:
        raise Invalid("Enter the person's name (120 characters at most).", field="full_name")
    if draft.role not in {r.value for r in Role}:
        raise Invalid("Unknown role: {role}.", field="role", role=draft.role)
    if draft.locale not in {None, "fr", "en"}:
        raise Invalid("Unknown language: {locale}.", field="locale", locale=draft.locale)
    return UserDraft(username, full_name, draft.role, tuple(sorted(set(draft.site_codes))), draft.locale)


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise Invalid(problem, field="password", min=MIN_LENGTH)


async def _sites(session: AsyncSession, codes: Iterable[str]) -> list[Site]:
    wanted = set(codes)
    found = list((await session.scalars(select(Site).where(Site.code.in_(wanted)).order_by(Site.code))).all())
    missing = wanted - {s.code for s in found}
    if missing:
        raise Invalid("Unknown site: {code}.", field="sites", code=", ".join(sorted(missing)))
    return found


async def create_user(db: Database, draft: UserDraft, password: str, *, actor: Actor, now: datetime) -> UUID:
    """Create an account; the username must be new."""
    draft = _validate(draft)
    _check_password(password)
    password_hash = await hash_password(password)
    async with db.transaction() as session:
        if await session.scalar(select(User.id).where(User.username == draft.username)):
            raise Invalid("The username {username} is taken.", field="username", username=draft.username)
        user = User(
            username=draft.username,
            full_name=draft.full_name,
            role=draft.role,
            locale=draft.locale,
            password_hash=password_hash,
            password_changed_at=now,
        )
        user.sites = await _sites(session, draft.site_codes)
        session.add(user)
        await session.flush()
        await journal.record(
            session,
            "user.created",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            user=draft.username,
            role=draft.role,
            sites=list(draft.site_codes),
        )
        return user.id


async def _load_for_update(session: AsyncSession, username: str) -> User:
    user = await session.scalar(
        select(User).where(User.username == username.strip().lower()).with_for_update()
    )
    if user is None:
        raise NotFound("No user named {username}.", username=username)
    return user


async def update_user(db: Database, username: str, draft: UserDraft, *, actor: Actor, now: datetime) -> None:
    """Change name, role, sites and language. A role or site change ends the user's open sessions."""
    draft = _validate(UserDraft(username, draft.full_name, draft.role, draft.site_codes, draft.locale))
    async with db.transaction() as session:
        user = await _load_for_update(session, username)
        sites = await _sites(session, draft.site_codes)
        scope_changed = user.role != draft.role or {s.id for s in user.sites} != {s.id for s in sites}
        user.full_name, user.role, user.locale, user.sites = draft.full_name, draft.role, draft.locale, sites
        if scope_changed:
            await revoke_sessions(session, user.id, now)
        await journal.record(
            session,
            "user.updated",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            user=user.username,
            role=draft.role,
            sites=list(draft.site_codes),
        )


async def set_password(db: Database, username: str, password: str, *, actor: Actor, now: datetime) -> None:
    """Set a new password, clear any lockout and end the user's open sessions."""
    _check_password(password)
    password_hash = await hash_password(password)
    async with db.transaction() as session:
        user = await _load_for_update(session, username)
        user.password_hash, user.password_changed_at = password_hash, now
        user.failed_logins, user.locked_until = 0, None
        await revoke_sessions(session, user.id, now)
        await journal.record(
            session,
            "user.password_set",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            user=user.username,
        )


async def set_active(db: Database, username: str, active: bool, *, actor: Actor, now: datetime) -> None:
    """Disable (ending every session at once) or re-enable an account."""
    async with db.transaction() as session:
        user = await _load_for_update(session, username)
        if not active and actor.user_id == user.id:
            raise Invalid("You cannot disable your own account.", field="active")
        user.is_active = active
        if not active:
            await revoke_sessions(session, user.id, now)
        await journal.record(
            session,
            "user.enabled" if active else "user.disabled",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            user=user.username,
        )


async def set_locale(db: Database, user_id: UUID, locale: str | None) -> None:
    """Remember the language a user chose for their screens."""
    if locale not in {None, "fr", "en"}:
        raise Invalid("Unknown language: {locale}.", field="locale", locale=locale)
    async with db.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is not None:
            user.locale = locale
