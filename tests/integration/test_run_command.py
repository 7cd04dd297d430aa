"""`dispatch run` (what `make run` starts): the whole laptop stack, stopped cleanly, data kept."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from app.services.demo import DEMO_ACCOUNTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def var_dir():
    path = Path(tempfile.mkdtemp(prefix="sd-run-"))
    path.chmod(0o755)  # PostgreSQL runs as another user when the tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(var_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # Plain-http test client: it would not send Secure cookies back (browsers do, on localhost).
    env.update(VAR_DIR=str(var_dir), WEB_PORT=str(port), SECURE_COOKIES="false", LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def wait_ready(base: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready after {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> set[int]:
    """Ctrl+C the supervisor; return every process it had started (including PostgreSQL)."""
    family = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    return family


def postmaster_pid(var_dir: Path) -> int:
    return int((var_dir / "pg" / "postmaster.pid").read_text().split()[0])


def test_run_serves_the_demo_stops_cleanly_and_keeps_its_data(var_dir, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first_log = tmp_path / "first.log"
    process = start(var_dir, port, first_log)
    try:
        wait_ready(base, process, first_log)
        postgres = postmaster_pid(var_dir)
        username, password, _role = DEMO_ACCOUNTS[0]
        with httpx.Client(base_url=base) as browser:
            browser.get("/login")
            answer = browser.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "next": "/",
                    "_csrf_token": browser.cookies["csrftoken"],
                },
            )
            assert answer.status_code == 303, answer.text
            home = browser.get("/")
            assert home.status_code == 200
            assert "Lyon Saint-Priest" in home.text
    finally:
        family = stop(process) if process.poll() is None else set()
    time.sleep(1)
    assert "Loading demo data" in first_log.read_text()
    assert family, "the supervisor had no child processes"
    assert not [
        pid
        for pid in family | {postgres}
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]

    second_log = tmp_path / "second.log"
    process = start(var_dir, port, second_log)
    try:
        wait_ready(base, process, second_log)
        with httpx.Client(base_url=base) as browser:
            browser.get("/login")
            answer = browser.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "next": "/",
                    "_csrf_token": browser.cookies["csrftoken"],
                },
            )
            assert answer.status_code == 303
    finally:
        stop(process)
    assert "Loading demo data" not in second_log.read_text()
