"""Schema migrations (Alembic through advanced-alchemy), callable from the CLI and the tests."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from advanced_alchemy.alembic.commands import AlembicCommands

from app.db.session import sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.settings import DatabaseSettings


def _commands(urls: DatabaseUrls) -> AlembicCommands:
    config = sqlalchemy_config(urls, DatabaseSettings(), application_name="dispatch-migrate", pooled=False)
    return AlembicCommands(sqlalchemy_config=config)


def upgrade(urls: DatabaseUrls, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Must not run inside an event loop (Alembic starts its own)."""
    _commands(urls).upgrade(revision=revision)


def downgrade(urls: DatabaseUrls, revision: str) -> None:
    _commands(urls).downgrade(revision=revision)


def current(urls: DatabaseUrls) -> str:
    """The revision the database is at, as Alembic prints it ('' for an empty database)."""
    out = io.StringIO()
    with redirect_stdout(out):
        _commands(urls).current(verbose=False)
    return out.getvalue().strip()


def make_revision(urls: DatabaseUrls, message: str) -> None:
    """Autogenerate a draft migration against `urls` (then review it by hand before committing)."""
    _commands(urls).revision(message=message, autogenerate=True)
