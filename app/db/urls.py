"""One PostgreSQL URL, spelled for each driver that needs it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class DatabaseUrls:
    libpq: str  # postgresql://… for psycopg (SAQ), asyncpg and pg_dump
    sqlalchemy: str  # postgresql+asyncpg://… for SQLAlchemy

    @classmethod
    def parse(cls, url: str) -> DatabaseUrls:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
        plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        driver = parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        return cls(libpq=plain, sqlalchemy=driver)

    def with_database(self, name: str) -> DatabaseUrls:
        return DatabaseUrls.parse(
            make_url(self.libpq).set(database=name).render_as_string(hide_password=False)
        )

    @property
    def database_name(self) -> str:
        return make_url(self.libpq).database or "postgres"

    @property
    def safe(self) -> str:
        """The URL with its password hidden, for logs and screens."""
        return make_url(self.libpq).render_as_string(hide_password=True)
