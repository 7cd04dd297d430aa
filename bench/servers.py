"""Starting the two servers (ours and the baseline), waiting for them, and always stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.db.urls import DatabaseUrls
from bench.database import BENCH_PASSWORD, BENCH_USER
from bench.fortunes_app import DSN_ENV

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SESSION_COOKIE = "sd_session"  # SECURE_COOKIES=false: plain names, no __Host- prefix
CSRF_COOKIE = "csrftoken"


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def ours_command(port: int, urls: DatabaseUrls) -> tuple[list[str], dict[str, str]]:
    """Our app, exactly as deployed: `dispatch serve` (granian, one worker, the app factory)."""
    env = _base_env() | {
        "DATABASE_URL": urls.libpq,
        "APP_ENV": "development",
        "SECURE_COOKIES": "false",  # plain http on 127.0.0.1
        "LOG_LEVEL": "WARNING",
        "SESSION_TOKEN_MINUTES": "60",  # the cookie must outlive the run without being renewed
        "WEB_HOST": HOST,
    }
    return [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"], env


def baseline_command(port: int, urls: DatabaseUrls) -> tuple[list[str], dict[str, str]]:
    env = _base_env() | {DSN_ENV: urls.libpq}
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--factory",
        "bench.fortunes_app:create_app",
    ], env


@contextlib.contextmanager
def running(
    name: str, command: list[str], env: dict[str, str], port: int, ready_path: str, log_dir: Path
) -> Iterator[Server]:
    """Start a server in its own process group; on exit stop the whole group (granian forks workers)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(name, port, process, log_path)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # Workers left behind by a dying parent are still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise RuntimeError(f"{server.name} server exited ({code}):\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} server not ready after {timeout:.0f}s:\n{server.log_tail()}")


def log_in(server: Server) -> dict[str, str]:
    """Sign in through the real form (CSRF included); the cookies a browser would then send."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        client.get("/login").raise_for_status()
        csrf = client.cookies.get(CSRF_COOKIE)
        if not csrf:
            raise RuntimeError(f"GET /login set no {CSRF_COOKIE} cookie")
        form = {"username": BENCH_USER, "password": BENCH_PASSWORD, "next": "/", "_csrf_token": csrf}
        response = client.post("/login", data=form)
        session = client.cookies.get(SESSION_COOKIE)
        if response.status_code != 303 or not session:
            raise RuntimeError(f"login failed: HTTP {response.status_code}\n{response.text[:500]}")
        return {CSRF_COOKIE: csrf, SESSION_COOKIE: session}
