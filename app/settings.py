"""Settings: one frozen dataclass per concern, read from environment variables.

Every field carries its environment variable name and a one-line description in its metadata;
`.env.example` and the README's configuration table are checked against these by a test.
Parsing is strict: a malformed value stops the process at start-up with a message naming the
variable, and production mode refuses missing or default secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# 32+ characters like a real key (a shorter HMAC key makes PyJWT warn on every token); production refuses it.
DEV_SECRET = "dev-only-secret-change-me-in-production"  # noqa: S105 - the well-known default
DEV_DATA_KEY = "dev-only-data-key-change-me"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def env(name: str, default: Any, doc: str) -> Any:
    """Declare a field read from the environment variable `name`."""
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = env(
        "DATABASE_URL",
        "",
        "PostgreSQL URL (postgresql://user:pass@host:5432/db). Empty: a private PostgreSQL is started "
        "from the pgserver wheel with its data under VAR_DIR/pg.",
    )
    pool_size: int = env("DATABASE_POOL_SIZE", 5, "Connections kept open per process.")
    max_overflow: int = env("DATABASE_MAX_OVERFLOW", 5, "Extra connections a busy process may open.")
    echo: bool = env("DATABASE_ECHO", False, "Log every SQL statement (development only).")


@dataclass(frozen=True)
class WebSettings:
    host: str = env("WEB_HOST", "127.0.0.1", "Address granian listens on.")
    port: int = env("WEB_PORT", 8000, "Port granian listens on.")
    workers: int = env("WEB_WORKERS", 1, "granian worker processes (always 1 on Windows).")
    trusted_proxies: tuple[str, ...] = env(
        "WEB_TRUSTED_PROXIES",
        ("127.0.0.1", "::1"),
        "Comma-separated addresses whose X-Forwarded-For/-Proto headers are trusted (the IIS host).",
    )
    allowed_hosts: tuple[str, ...] = env(
        "WEB_ALLOWED_HOSTS", ("*",), "Comma-separated Host header values accepted ('*' for any)."
    )
    default_locale: Literal["fr", "en"] = env(
        "WEB_DEFAULT_LOCALE", "fr", "Language when neither the user nor the browser chooses one."
    )
    live_heartbeat_seconds: int = env(
        "LIVE_HEARTBEAT_SECONDS",
        15,
        "Keep-alive comment period of a quiet live stream, so proxies do not cut it.",
    )
    live_watchdog_seconds: int = env(
        "LIVE_WATCHDOG_SECONDS",
        10,
        "How often each web process checks that its LISTEN connection still gets events.",
    )
    live_stream_max_seconds: int = env(
        "LIVE_STREAM_MAX_SECONDS",
        300,
        "A live stream ends after this long; the browser reopens it (a revoked session stops).",
    )
    board_poll_seconds: int = env(
        "BOARD_POLL_SECONDS", 30, "Refresh period of a board whose live stream is cut (a proxy blocking SSE)."
    )


@dataclass(frozen=True)
class SecuritySettings:
    secret_key: str = env(
        "SECRET_KEY", DEV_SECRET, "Signs session tokens and CSRF cookies. Required (32+ chars) in production."
    )
    token_minutes: int = env(
        "SESSION_TOKEN_MINUTES", 10, "Lifetime of one signed session token; renewed while in use."
    )
    idle_minutes: int = env("SESSION_IDLE_MINUTES", 60, "A session unused this long ends.")
    absolute_hours: int = env(
        "SESSION_ABSOLUTE_HOURS", 12, "A session ends this long after login, used or not."
    )
    api_token_minutes: int = env(
        "API_TOKEN_MINUTES", 60, "Lifetime of a bearer token from /api/v1/auth/token."
    )
    lockout_threshold: int = env(
        "LOGIN_LOCKOUT_THRESHOLD", 5, "Consecutive failed logins after which an account is locked."
    )
    lockout_base_seconds: int = env(
        "LOGIN_LOCKOUT_SECONDS", 60, "First lock duration; doubles with each further failure."
    )
    lockout_max_seconds: int = env("LOGIN_LOCKOUT_MAX_SECONDS", 3600, "Longest lock duration.")
    ip_failures_per_10min: int = env(
        "LOGIN_IP_FAILURES_PER_10MIN",
        30,
        "Failed logins from one address in 10 minutes before it is refused.",
    )
    data_key: str = env(
        "DATA_KEY",
        DEV_DATA_KEY,
        "Encrypts sensitive columns (destination addresses, contacts). Required (32+ chars) in production.",
    )
    data_key_previous: tuple[str, ...] = env(
        "DATA_KEY_PREVIOUS",
        (),
        "Comma-separated former DATA_KEYs, still accepted for reading until `dispatch keys rotate` has run.",
    )
    secure_cookies: bool = env(
        "SECURE_COOKIES",
        True,
        "Mark cookies Secure and use __Host- names. Browsers accept them on https and on localhost.",
    )


@dataclass(frozen=True)
class QueueSettings:
    name: str = env("QUEUE_NAME", "dispatch", "SAQ queue the worker serves.")
    concurrency: int = env("WORKER_CONCURRENCY", 4, "Jobs one worker process runs at once.")
    heartbeat_seconds: int = env(
        "WORKER_HEARTBEAT_SECONDS", 10, "How often a worker records that it is alive."
    )
    heartbeat_stale_seconds: int = env(
        "WORKER_HEARTBEAT_STALE_SECONDS", 45, "/health/ready fails when no worker beat for this long."
    )
    relay_sweep_seconds: float = env(
        "OUTBOX_SWEEP_SECONDS", 5.0, "The outbox relay looks for job requests at least this often."
    )


@dataclass(frozen=True)
class DispatchSettings:
    inline_run_max_lines: int = env(
        "DISPATCH_INLINE_MAX_LINES",
        2000,
        "A dispatch run with more demand lines than this is committed by the worker, with a progress bar.",
    )
    pick_list_max_tasks: int = env(
        "PICK_LIST_MAX_TASKS", 40, "Most tasks in one pick list (a zone with more is split into several)."
    )
    label_printer: str = env(
        "LABEL_PRINTER",
        "",
        "host:port of a network label printer (ZPL, usually port 9100). Empty: labels are downloaded only.",
    )


@dataclass(frozen=True)
class OpsSettings:
    environment: Literal["development", "test", "production"] = env(
        "APP_ENV", "development", "development, test or production (production refuses unsafe defaults)."
    )
    var_dir: Path = env(
        "VAR_DIR", PROJECT_ROOT / "var", "Folder for the embedded database, metrics and logs."
    )
    log_level: str = env("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.")
    demo_seed: int = env("DEMO_SEED", 20261125, "Seed of the deterministic demo data.")


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    web: WebSettings
    security: SecuritySettings
    queue: QueueSettings
    dispatch: DispatchSettings
    ops: OpsSettings

    @property
    def production(self) -> bool:
        return self.ops.environment == "production"


CONCERNS: dict[str, type] = {
    "database": DatabaseSettings,
    "web": WebSettings,
    "security": SecuritySettings,
    "queue": QueueSettings,
    "dispatch": DispatchSettings,
    "ops": OpsSettings,
}


def _parse(raw: str, default: Any, annotation: str, name: str) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw).expanduser()
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if annotation.startswith("Literal"):
            allowed = [a.strip().strip("'\"") for a in annotation[8:-1].split(",")]
            if raw not in allowed:
                raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc


def _load_concern(cls: type, environ: Mapping[str, str]) -> Any:
    values = {}
    for f in fields(cls):
        name = f.metadata["env"]
        if name in environ and environ[name] != "":
            values[f.name] = _parse(environ[name], f.default, str(f.type), name)
    return cls(**values)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise SettingsError naming the first bad variable."""
    environ = os.environ if environ is None else environ
    settings = Settings(**{key: _load_concern(cls, environ) for key, cls in CONCERNS.items()})
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    sec = settings.security
    if settings.queue.heartbeat_stale_seconds <= settings.queue.heartbeat_seconds:
        raise SettingsError("WORKER_HEARTBEAT_STALE_SECONDS must exceed WORKER_HEARTBEAT_SECONDS")
    if settings.dispatch.label_printer and not _host_port(settings.dispatch.label_printer):
        raise SettingsError("LABEL_PRINTER must be host:port, e.g. 10.0.0.5:9100")
    if settings.dispatch.inline_run_max_lines < 0 or settings.dispatch.pick_list_max_tasks < 1:
        raise SettingsError("DISPATCH_INLINE_MAX_LINES must be 0 or more and PICK_LIST_MAX_TASKS 1 or more")
    if min(sec.token_minutes, sec.idle_minutes, sec.absolute_hours, sec.api_token_minutes) <= 0:
        raise SettingsError("session durations must be positive")
    if settings.production:
        if sec.secret_key == DEV_SECRET or len(sec.secret_key) < 32:
            raise SettingsError("SECRET_KEY must be set to a random value of 32+ characters in production")
        if sec.data_key == DEV_DATA_KEY or len(sec.data_key) < 32:
            raise SettingsError("DATA_KEY must be set to a random value of 32+ characters in production")
        if not sec.secure_cookies:
            raise SettingsError("SECURE_COOKIES cannot be off in production")
        if not settings.database.url:
            raise SettingsError(
                "DATABASE_URL is required in production (the embedded database is for laptops)"
            )


def _host_port(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def label_printer_address(settings: Settings) -> tuple[str, int] | None:
    """The label printer's (host, port), or None when labels are only downloaded."""
    return _host_port(settings.dispatch.label_printer) if settings.dispatch.label_printer else None


def documented_variables() -> list[tuple[str, str, str]]:
    """(variable, default as text, description) for every setting, in declaration order."""
    rows = []
    for cls in CONCERNS.values():
        for f in fields(cls):
            default = f.default if f.default is not MISSING else ""
            if isinstance(default, tuple):
                text = ",".join(default)
            elif isinstance(default, bool):
                text = str(default).lower()
            elif isinstance(default, Path):
                text = "var" if default == PROJECT_ROOT / "var" else str(default)
            else:
                text = str(default)
            rows.append((f.metadata["env"], text, f.metadata["doc"]))
    return rows


__all__ = ["Settings", "SettingsError", "documented_variables", "load_settings"]
