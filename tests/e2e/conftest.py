"""End-to-end harness: the real server (granian, as `dispatch serve` starts it) driven by a real Chromium.

One server and one database (copied from the session's template) serve the whole e2e session; tests
that change lasting state (lockouts, a user's language) use personas no other test relies on.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from app.db.urls import DatabaseUrls
from tests.conftest import TEMPLATE, Persona

E2E_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = E2E_DIR.parent.parent
AXE_JS = E2E_DIR / "vendor" / "axe-core-4.14.1.min.js"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TABLET = {"width": 1280, "height": 800}  # a 10" tablet in landscape
START_TIMEOUT = 30.0
BLOCKING_IMPACTS = ("serious", "critical")
# Moderate rules held as strictly, once met everywhere: two landmarks of one name cannot be told apart.
BLOCKING_RULES = ("landmark-unique",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # read by the `page` fixture to keep a failure's screenshot
    return report


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin_execute(urls: DatabaseUrls, sql: str) -> None:
    admin = await asyncpg.connect(urls.with_database("postgres").libpq)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def copied_database(template_urls: DatabaseUrls) -> Iterator[DatabaseUrls]:
    """A fresh copy of the template database, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin_execute(template_urls, f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    try:
        yield template_urls.with_database(name)
    finally:
        asyncio.run(_admin_execute(template_urls, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def live_database(template_urls: DatabaseUrls) -> Iterator[DatabaseUrls]:
    """The live server's database, a fresh copy of the template: tests add the data they need to it."""
    with copied_database(template_urls) as urls:
        yield urls


@pytest.fixture(scope="session")
def live_server(live_database: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `python -m app.cli serve` running on `live_database`."""
    with serve(live_database, tmp_path_factory.mktemp("e2e-var")) as base_url:
        yield base_url


@contextmanager
def serve(db_urls: DatabaseUrls, var_dir: Path, command: str = "serve", **extra_env: str) -> Iterator[str]:
    """`python -m app.cli <command>` on `db_urls` until the block ends; yields the base URL it serves.

    `command="worker"` starts a job worker instead (it serves no URL: the block waits for nothing).
    """
    log_path = var_dir / f"{command}-{uuid.uuid4().hex[:6]}.log"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_urls.libpq,
        "APP_ENV": "test",
        "SECRET_KEY": secrets.token_hex(20),  # 40 characters
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "WEB_HOST": "127.0.0.1",
        "WEB_WORKERS": "1",
        # What the tests rely on, whatever the surrounding environment says:
        "SECURE_COOKIES": "true",  # Chromium keeps Secure and __Host- cookies on http://127.0.0.1
        "WEB_DEFAULT_LOCALE": "fr",
        "WEB_ALLOWED_HOSTS": "*",
        "LOGIN_LOCKOUT_THRESHOLD": "5",
        "LOGIN_IP_FAILURES_PER_10MIN": "30",
        **extra_env,
    }
    base_url = f"http://127.0.0.1:{port}"
    arguments = ["serve", "--port", str(port)] if command == "serve" else [command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *arguments],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while command == "serve" and not _answers(f"{base_url}/health/live"):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                output = log_path.read_text(errors="replace")
                pytest.fail(
                    f"the server did not answer on {base_url}/health/live "
                    f"(exit code {process.returncode}):\n{output}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield base_url
    finally:
        _stop(process)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[Browser]:
    """Chromium, started after the server and closed at the end of each module.

    Playwright's sync API leaves its asyncio loop marked as running in this thread while it lives, so
    nothing may call asyncio.run() meanwhile: the database set-up (`live_server`, `template_urls`) must
    come first, and the browser must be gone before async tests of other folders run in the same session.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh French-speaking tablet: its own context, so no cookie leaks from one test to the next."""
    context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport=TABLET)  # CSP would refuse axe
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            try:
                tab.screenshot(path=str(ARTIFACTS / f"{slug}.png"), full_page=True)
            except Exception as exc:
                print(f"no screenshot: {exc}")
        context.close()


# ---------------------------------------------------------------- helpers


def login(page: Page, base_url: str, persona: Persona, password: str | None = None) -> None:
    """Sign in through the form, as a person would; `password` overrides the persona's."""
    page.goto(f"{base_url}/login")
    page.locator("#f-username").fill(persona.username)
    page.locator("#f-password").fill(persona.password if password is None else password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def assert_fits_width(page: Page, *widths: int) -> None:
    """At each window width, nothing pushes the page sideways (a wide table scrolls in its own region)."""
    size = page.viewport_size
    assert size is not None
    try:
        for width in widths:
            page.set_viewport_size({"width": width, "height": size["height"]})
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{page.url} is {overflow} px wider than a {width} px window"
    finally:
        page.set_viewport_size(size)


def assert_accessible(page: Page) -> None:
    """Run axe-core on the page as it stands; fail on serious or critical violations and on BLOCKING_RULES."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    blocking = [
        v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS or v["id"] in BLOCKING_RULES
    ]
    if blocking:
        lines = [f"axe: {len(blocking)} serious/critical violation(s) on {page.url}"]
        for v in blocking:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v.get('helpUrl', '')}>")
            for node in v["nodes"][:10]:
                target = " ".join(str(t) for t in node.get("target", []))
                summary = "; ".join(line.strip() for line in node.get("failureSummary", "").splitlines()[1:])
                lines.append(f"    {target}: {summary}")
        pytest.fail("\n".join(lines), pytrace=False)


async def receive_stock(db: Any, site_id: int, stock: list[tuple[str, str, int]], who: str) -> None:
    """Book (SKU, location, quantity) receipts through the stock service, as a module's data set-up."""
    from datetime import UTC, datetime

    from app.domain.ledger import MovementKind
    from app.services.stock import Actor, StockChange, record_stock_change

    for sku, location, quantity in stock:
        await record_stock_change(
            db,
            StockChange(MovementKind.RECEIPT, site_id, sku, quantity, target=location),
            actor=Actor(None, who),
            idempotency_key=uuid.uuid4().hex,
            now=datetime.now(UTC),
        )
