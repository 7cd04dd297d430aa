"""Logging in and out, and turning a session id back into a person on every request."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AccessEvent, AuthSession, User
from app.db.session import Database, driver
from app.domain.access import Principal, Role
from app.domain.lockout import LockoutPolicy, is_locked, register_failure
from app.domain.sessions import SessionPolicy, SessionState, needs_touch, session_state
from app.services import journal
from app.services.errors import N_, LoginRefused, TooManyAttempts
from app.services.passwords import verify_password

IP_WINDOW = timedelta(minutes=10)
WRONG_CREDENTIALS = N_("Wrong username or password.")


@dataclass(frozen=True)
class LoginPolicy:
    sessions: SessionPolicy
    lockout: LockoutPolicy
    ip_failures_per_window: int
    api_token: timedelta


@dataclass(frozen=True)
class Login:
    principal: Principal
    session_expires_at: datetime


@dataclass(frozen=True)
class _Refusal:
    error: LoginRefused | TooManyAttempts


async def log_in(
    db: Database,
    *,
    username: str,
    password: str,
    kind: str,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    policy: LoginPolicy,
) -> Login:
    """Check the credentials and open a session. Failures are journaled and counted even though refused."""
    name = username.strip().lower()
    outcome = await db.run(lambda s: _attempt(s, name, password, kind, ip, user_agent, now, policy))
    if isinstance(outcome, _Refusal):
        raise outcome.error  # raised after commit: the failure count and the journal entry are kept
    return outcome


async def _attempt(
    session: AsyncSession,
    username: str,
    password: str,
    kind: str,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    policy: LoginPolicy,
) -> Login | _Refusal:
    if ip is not None and await _recent_ip_failures(session, ip, now) >= policy.ip_failures_per_window:
        await journal.record(session, "login.throttled", actor_name=username[:64], ip=ip)
        return _Refusal(TooManyAttempts("Too many failed logins from this address. Wait a few minutes."))

    user = await session.scalar(select(User).where(User.username == username).with_for_update())
    if user is None or not user.is_active:
        await verify_password(password, None)  # same cost as a real check: no user enumeration by timing
        reason = "unknown_user" if user is None else "disabled"
        await journal.record(session, "login.failed", actor_name=username[:64], ip=ip, reason=reason)
        return _Refusal(LoginRefused(WRONG_CREDENTIALS))

    if is_locked(user.locked_until, now):
        await journal.record(session, "login.locked", actor_id=user.id, actor_name=user.username, ip=ip)
        return _Refusal(
            LoginRefused(
                "Account locked after repeated failures. Try again after {until}.", until=user.locked_until
            )
        )

    if not await verify_password(password, user.password_hash):
        outcome = register_failure(user.failed_logins, now, policy.lockout)
        user.failed_logins, user.locked_until = outcome.failures, outcome.locked_until
        await journal.record(
            session,
            "login.failed",
            actor_id=user.id,
            actor_name=user.username,
            ip=ip,
            reason="password",
            failures=outcome.failures,
            locked=outcome.locked_until is not None,
        )
        return _Refusal(LoginRefused(WRONG_CREDENTIALS))

    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    lifetime = policy.api_token if kind == "api" else policy.sessions.absolute
    auth = AuthSession(
        user_id=user.id,
        kind=kind,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(auth)
    await session.flush()
    await journal.record(session, "login", actor_id=user.id, actor_name=user.username, ip=ip, kind=kind)
    principal = Principal(
        user_id=user.id,
        session_id=auth.id,
        username=user.username,
        full_name=user.full_name,
        role=Role(user.role),
        locale=user.locale,
        site_ids=frozenset(site.id for site in user.sites),
    )
    return Login(principal=principal, session_expires_at=auth.expires_at)


async def _recent_ip_failures(session: AsyncSession, ip: str, now: datetime) -> int:
    query = select(func.count()).where(
        AccessEvent.event == "login.failed", AccessEvent.ip == ip, AccessEvent.created_at > now - IP_WINDOW
    )
    return int(await session.scalar(query) or 0)


async def log_out(db: Database, principal: Principal, *, ip: str | None, now: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == principal.session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await journal.record(
            session, "logout", actor_id=principal.user_id, actor_name=principal.username, ip=ip
        )


# On every request: raw asyncpg (a prepared statement) rather than a Core query through the session,
# whose compilation, cache key and result processing cost several times the statement itself.
_PRINCIPAL_SQL = """
    SELECT s.id, s.kind, s.last_seen_at, s.expires_at, s.revoked_at,
           u.id AS user_id, u.username, u.full_name, u.role, u.locale, u.is_active,
           coalesce((SELECT array_agg(us.site_id) FROM user_sites us WHERE us.user_id = u.id), '{}')
               AS site_ids
    FROM auth_sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id = $1
"""

_PRINCIPAL_QUERY = text(_PRINCIPAL_SQL.replace("$1", ":id"))


async def resolve_principal(
    db: Database, session_id: UUID, *, kind: str, now: datetime, policy: SessionPolicy
) -> tuple[Principal, datetime] | None:
    """The person of a live session and the session's end, or None if it is over (revoked, idle, expired)."""
    row = await _session_row(db, session_id)
    if row is None or row["kind"] != kind or not row["is_active"]:
        return None
    state = session_state(
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        now=now,
        idle=policy.idle,
    )
    if state is not SessionState.ACTIVE:
        return None
    if needs_touch(row["last_seen_at"], now, policy):
        async with db.reads() as session:  # autocommit: this statement commits by itself
            await session.execute(
                update(AuthSession).where(AuthSession.id == session_id).values(last_seen_at=now)
            )
    principal = Principal(
        user_id=UUID(int=row["user_id"].int),
        session_id=UUID(int=row["id"].int),
        username=row["username"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        locale=row["locale"],
        site_ids=frozenset(row["site_ids"]),
    )
    return principal, row["expires_at"]


async def _session_row(db: Database, session_id: UUID) -> asyncpg.Record | None:
    """The session with its person, read again once if the database had dropped the connection.

    After a database restart every pooled connection is dead, and SQLAlchemy never sees asyncpg's own
    error, so it would hand the dead connection out again. The same statement through SQLAlchemy fails
    the same way and makes it replace the whole pool (no pre-ping: see app/db/session.py); the second
    read goes through a fresh connection, so a restart sends nobody back to the login page.
    """
    for attempt in (1, 2):
        async with db.reads() as session:
            try:
                connection = await driver(session)
                row: asyncpg.Record | None = await connection.fetchrow(_PRINCIPAL_SQL, session_id)
                return row
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
                if attempt == 2:
                    raise
                with contextlib.suppress(DBAPIError):
                    await session.execute(_PRINCIPAL_QUERY, {"id": session_id})
    raise AssertionError("unreachable")


async def revoke_sessions(session: AsyncSession, user_id: UUID, now: datetime) -> None:
    """End every open session of a user, inside the caller's transaction."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def purge_sessions(db: Database, *, before: datetime) -> int:
    """Delete sessions that were revoked or expired before `before`; the journal keeps the logins."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(AuthSession).where((AuthSession.expires_at < before) | (AuthSession.revoked_at < before))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
