"""What every request handler may need, built once per process in create_app()."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from litestar.datastructures import State
from litestar.di import NamedDependency

from app.db.session import Database
from app.db.urls import DatabaseUrls
from app.domain.lockout import LockoutPolicy
from app.domain.sessions import SessionPolicy
from app.services.auth import LoginPolicy
from app.settings import Settings
from app.web.live import LiveHub


@dataclass
class AppContext:
    settings: Settings
    urls: DatabaseUrls
    db: Database
    login_policy: LoginPolicy
    live: LiveHub

    @classmethod
    def build(cls, settings: Settings, urls: DatabaseUrls, db: Database, live: LiveHub) -> AppContext:
        sec = settings.security
        policy = LoginPolicy(
            sessions=SessionPolicy(
                idle=timedelta(minutes=sec.idle_minutes),
                absolute=timedelta(hours=sec.absolute_hours),
                token=timedelta(minutes=sec.token_minutes),
            ),
            lockout=LockoutPolicy(sec.lockout_threshold, sec.lockout_base_seconds, sec.lockout_max_seconds),
            ip_failures_per_window=sec.ip_failures_per_10min,
            api_token=timedelta(minutes=sec.api_token_minutes),
        )
        return cls(settings=settings, urls=urls, db=db, login_policy=policy, live=live)

    @staticmethod
    def now() -> datetime:
        """The one clock of the web process; services and the domain take time as a parameter."""
        return datetime.now(UTC)


def provide_context(state: State) -> AppContext:
    ctx: AppContext = state.ctx
    return ctx


# How a route asks for the context: an explicit named dependency (inferred ones are deprecated).
Ctx = NamedDependency[AppContext]
