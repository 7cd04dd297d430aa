"""`dispatch`: the one command for everything an operator of the system runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

import click

from app.db import migrate
from app.db.crypto import configure_keys
from app.db.embedded import embedded_server
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.services import users as user_service
from app.services.errors import Refused
from app.services.users import Actor, UserDraft
from app.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        settings = load_settings()
        configure_keys(settings.security.data_key, settings.security.data_key_previous)
        return settings
    except SettingsError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[DatabaseUrls]:
    """The configured PostgreSQL, or the embedded one (started if needed) when DATABASE_URL is empty."""
    if settings.database.url:
        yield DatabaseUrls.parse(settings.database.url)
    else:
        with embedded_server(settings.ops.var_dir) as urls:
            yield urls


def _run(coro: object) -> object:
    if sys.platform == "win32":  # psycopg (SAQ) refuses the Proactor loop
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
    return asyncio.run(coro)  # type: ignore[arg-type]


def _now() -> datetime:
    return datetime.now(UTC)


def _read_password(confirm: bool = True) -> str:
    """From stdin when piped, else prompted twice; never from the command line (it would show in `ps`)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise click.ClickException("the two passwords differ")
    return first


@click.group()
def main() -> None:
    """Stock Dispatch: stock, dispatch and picking for warehouses."""


# ---------------------------------------------------------------- processes


def _serve(settings: Settings, urls: DatabaseUrls, host: str, port: int, workers: int) -> None:
    from granian.constants import Interfaces
    from granian.server import Server

    os.environ["DATABASE_URL"] = urls.libpq  # granian's worker processes build the app from the environment
    Server(
        "app.asgi:create_served_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1 if sys.platform == "win32" else workers,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    ).serve()


@main.command()
@click.option("--host", default=None, help="Address to listen on (default WEB_HOST).")
@click.option("--port", default=None, type=int, help="Port (default WEB_PORT).")
@click.option("--workers", default=None, type=int, help="granian worker processes (default WEB_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the web application with granian."""
    settings = _settings()
    with database(settings) as urls:
        _serve(
            settings,
            urls,
            host or settings.web.host,
            port or settings.web.port,
            workers or settings.web.workers,
        )


@main.command()
def worker() -> None:
    """Run the background worker: job queue, outbox relay, schedules, heartbeat."""
    from workers.main import run_worker

    settings = _settings()
    with database(settings) as urls:
        _run(run_worker(settings, urls))


@main.command()
@click.option("--port", default=None, type=int, help="Port (default WEB_PORT).")
@click.option("--no-demo", is_flag=True, help="Do not load demo data into an empty database.")
def run(port: int | None, no_demo: bool) -> None:
    """Everything on one machine: database, migrations, demo data, web and worker. Ctrl+C stops it all."""
    settings = _settings()
    port = port or settings.web.port
    metrics_dir = settings.ops.var_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    with database(settings) as urls:
        migrate.upgrade(urls)
        if not no_demo:
            from app.services.demo import demo_loaded, load_demo

            if not _run(demo_loaded(urls)):
                click.echo("Loading demo data (first run only)…")
                _run(load_demo(urls, seed=settings.ops.demo_seed))
        env = {**os.environ, "DATABASE_URL": urls.libpq, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        exe = [sys.executable, "-m", "app.cli"]
        with _children([[*exe, "serve", "--port", str(port)], [*exe, "worker"]], env) as children:
            _announce(settings, port)
            _wait_for_stop(children)


def _announce(settings: Settings, port: int) -> None:
    host = "localhost" if settings.web.host in {"127.0.0.1", "0.0.0.0"} else settings.web.host  # noqa: S104
    click.echo(f"\n  Stock Dispatch is running at http://{host}:{port}/\n")
    if not settings.production:
        from app.services.demo import DEMO_ACCOUNTS

        click.echo("  Demo accounts (username / password):")
        for username, password, role in DEMO_ACCOUNTS:
            click.echo(f"    {username:<12} {password:<18} {role}")
    click.echo("\n  Press Ctrl+C to stop.\n")


@contextlib.contextmanager
def _children(commands: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the processes; whatever happens next, stop every one of them (so none is orphaned)."""
    children: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            children.append(subprocess.Popen(command, env=env))  # noqa: S603 - our own interpreter and module
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            if child.poll() is None:
                child.kill()
                child.wait()
        click.echo("Stopped.")


def _wait_for_stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Return on Ctrl+C, SIGTERM, or when a child dies."""
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)


# ---------------------------------------------------------------- database


@main.group()
def db() -> None:
    """Database schema: upgrade, downgrade, current."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    with database(_settings()) as urls:
        migrate.upgrade(urls, revision)
        click.echo(f"database at {migrate.current(urls) or 'base'}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' for an empty schema)."""
    with database(_settings()) as urls:
        migrate.downgrade(urls, revision)
        click.echo(f"database at {migrate.current(urls) or 'base'}")


@db.command()
def current() -> None:
    """Show the revision the database is at."""
    with database(_settings()) as urls:
        click.echo(migrate.current(urls) or "base (no migration applied)")


# ---------------------------------------------------------------- users


@main.group()
def users() -> None:
    """User accounts. Passwords are read from stdin or prompted, never taken as arguments."""


async def _with_database(
    settings: Settings, urls: DatabaseUrls, call: Callable[[Database], Awaitable[T]]
) -> T:
    """Run one service call against its own short-lived engine; returns its result."""
    db = Database(sqlalchemy_config(urls, settings.database, application_name="dispatch-cli"))
    try:
        return await call(db)
    finally:
        await db.dispose()


P = ParamSpec("P")
T = TypeVar("T")


def _refused_as_click(fn: Callable[P, None]) -> Callable[P, None]:
    """Show a service's refusal as a one-line command error instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Refused as exc:
            raise click.ClickException(exc.message.format(**exc.facts)) from exc

    return wrapper


@users.command("create")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="The person's name as shown on screens.")
@click.option("--role", type=click.Choice(["operator", "supervisor", "admin"]), required=True)
@click.option("--site", "sites", multiple=True, help="Site code the user works on (repeatable).")
@click.option("--locale", type=click.Choice(["fr", "en"]), default=None)
@_refused_as_click
def users_create(
    username: str, full_name: str, role: str, sites: tuple[str, ...], locale: str | None
) -> None:
    """Create USERNAME."""
    settings = _settings()
    password = _read_password()
    draft = UserDraft(username, full_name, role, sites, locale)
    with database(settings) as urls:
        _run(
            _with_database(
                settings,
                urls,
                lambda db: user_service.create_user(db, draft, password, actor=Actor.system(), now=_now()),
            )
        )
    click.echo(f"created {username.lower()}")


@users.command("set-password")
@click.argument("username")
@_refused_as_click
def users_set_password(username: str) -> None:
    """Set USERNAME's password (clears a lockout, ends open sessions)."""
    settings = _settings()
    password = _read_password()
    with database(settings) as urls:
        _run(
            _with_database(
                settings,
                urls,
                lambda db: user_service.set_password(
                    db, username, password, actor=Actor.system(), now=_now()
                ),
            )
        )
    click.echo(f"password set for {username.lower()}")


@users.command("disable")
@click.argument("username")
@_refused_as_click
def users_disable(username: str) -> None:
    """Disable USERNAME and end their sessions at once."""
    settings = _settings()
    with database(settings) as urls:
        _run(
            _with_database(
                settings,
                urls,
                lambda db: user_service.set_active(db, username, False, actor=Actor.system(), now=_now()),
            )
        )
    click.echo(f"disabled {username.lower()}")


# ---------------------------------------------------------------- keys


@main.group()
def keys() -> None:
    """Encryption keys of sensitive columns (DATA_KEY)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every sensitive value with DATA_KEY (old keys listed in DATA_KEY_PREVIOUS)."""
    from app.services.data_keys import rotate_data_key

    settings = _settings()
    with database(settings) as urls:
        count = _run(_with_database(settings, urls, rotate_data_key))
    click.echo(f"re-encrypted {count} values with the current DATA_KEY; DATA_KEY_PREVIOUS may now be emptied")


# ---------------------------------------------------------------- demo


@main.group()
def demo() -> None:
    """Demo data for trying the tool."""


@demo.command("load")
@click.option(
    "--seed", type=int, default=None, help="Seed (default DEMO_SEED); the same seed gives the same data."
)
def demo_load(seed: int | None) -> None:
    """Load the demo warehouse into an empty database (applies migrations first)."""
    from app.services.demo import demo_loaded, load_demo

    settings = _settings()
    if settings.production:
        raise click.ClickException("demo data is not loaded in production")
    with database(settings) as urls:
        migrate.upgrade(urls)
        if _run(demo_loaded(urls)):
            raise click.ClickException("demo data is already loaded")
        counts = _run(load_demo(urls, seed=seed if seed is not None else settings.ops.demo_seed))
    click.echo("loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
