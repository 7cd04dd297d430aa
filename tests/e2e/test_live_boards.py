"""Live boards in real Chromium windows, against real servers on their own database.

Two web servers (server B with two granian workers) and a job worker share one PostgreSQL. The
supervisor's board is open on server A; the changes come from an operator's tablet on server B, from
the worker, and from a service call while every connection of the database has just been cut. The
board must show each without a reload. The delays are printed (`-s`), never asserted: the bench
(`python -m bench.boards`) measures them under load.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.domain.ledger import MovementKind
from app.services.dispatch_runs import RunOptions, start_dispatch_run
from app.services.stock import Actor, StockChange, record_stock_change
from app.settings import Settings
from tests.conftest import PERSONAS
from tests.e2e.conftest import TABLET, copied_database, login, serve
from tests.integration.dispatch_fixtures import Dest, make_destinations, make_order
from tests.integration.picking_fixtures import Day, dispatched_day

T = TypeVar("T")
DESKTOP = {"width": 1600, "height": 1000}
ACTOR = Actor(user_id=None, scope="e2e-boards")


def run(urls: DatabaseUrls, settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """`work(db)` on its own event loop and thread (Playwright keeps one running in this one)."""

    async def with_database() -> T:
        db = Database(sqlalchemy_config(urls, settings.database, application_name="e2e-boards"))
        try:
            return await work(db)
        finally:
            await db.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, with_database()).result()


@pytest.fixture(scope="module")
def boards_db(template_urls: DatabaseUrls) -> Iterator[DatabaseUrls]:
    with copied_database(template_urls) as urls:
        yield urls


@pytest.fixture(scope="module")
def day(boards_db: DatabaseUrls, test_settings: Settings) -> Day:
    """Lyon after its morning dispatch run: a flour list and a yogurt list, both free to take."""
    return run(boards_db, test_settings, dispatched_day)


@pytest.fixture(scope="module")
def servers(
    boards_db: DatabaseUrls, day: Day, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Server A (the supervisor's), server B (the operators', two granian workers) and a job worker.

    Server B's requests land on either of its workers: a change made there is always made in another
    process than the one streaming the board, as in production behind a farm of web processes.
    """
    var = tmp_path_factory.mktemp("boards")
    key = uuid.uuid4().hex * 2
    with (
        serve(boards_db, var, SECRET_KEY=key, BOARD_POLL_SECONDS="2") as server_a,
        serve(boards_db, var, SECRET_KEY=key, WEB_WORKERS="2") as server_b,
        serve(boards_db, var, "worker", SECRET_KEY=key),
    ):
        yield server_a, server_b


@contextmanager
def window(
    browser: Browser, base_url: str, persona: str, viewport: dict[str, int], blocked: str | None = None
) -> Iterator[Page]:
    """A French browser window of its own (its own cookies), signed in as `persona`.

    `blocked`: a URL pattern the window's network refuses, as a proxy that blocks it would.
    """
    context = browser.new_context(locale="fr-FR", viewport=viewport)
    context.set_default_timeout(15_000)
    if blocked:
        context.route(blocked, lambda route: route.abort())
    try:
        page = context.new_page()
        login(page, base_url, PERSONAS[persona])
        yield page
    finally:
        context.close()


@pytest.fixture
def board(servers: tuple[str, str], browser: Browser) -> Iterator[Page]:
    """The supervisor's board of Lyon on server A, its live stream open."""
    with window(browser, servers[0], "supervisor", DESKTOP) as page:
        page.goto(f"{servers[0]}/sites/LYS/board")
        expect(page.locator(".board")).to_have_attribute("data-live", "on")
        yield page


def watch(board: Page, panel: str) -> None:
    """Note when `panel` is next redrawn (board clock, ms), to print the delay."""
    board.evaluate(
        """(panel) => {
            window.redrawnAt = null;
            const target = document.getElementById("panel-" + panel);
            new MutationObserver((_m, observer) => { window.redrawnAt = Date.now(); observer.disconnect(); })
                .observe(target, { childList: true, subtree: true, characterData: true });
        }""",
        panel,
    )


def report(board: Page, what: str, since_ms: float) -> None:
    redrawn = board.evaluate("window.redrawnAt")
    if redrawn:
        print(f"\n{what}: the board redrew {redrawn - since_ms:.0f} ms after the change was committed")


def scan(page: Page, code: str) -> None:
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def test_a_pick_confirmed_on_a_tablet_shows_on_the_board_of_another_server_without_reload(
    servers: tuple[str, str], day: Day, browser: Browser, board: Page
) -> None:
    pickers = board.locator("#panel-pickers")
    expect(pickers).not_to_contain_text("Olivia Opérateur")
    board.evaluate("window.sameDocument = true")  # gone if the page were reloaded

    with window(browser, servers[1], "operator", TABLET) as tablet:
        tablet.goto(f"{servers[1]}/sites/LYS/picking/{day.flour_list}")
        flow = tablet.locator("[data-scan-form]")
        expect(flow).to_have_attribute("data-step", "location")
        scan(tablet, "A-01-01")
        expect(flow).to_have_attribute("data-step", "product")
        scan(tablet, "SKU-FLOUR")
        expect(flow).to_have_attribute("data-step", "quantity")
        tablet.locator("#f-quantity").fill("20")
        watch(board, "pickers")
        confirmed_at = tablet.evaluate("Date.now()")
        tablet.locator("button.btn-confirm").click()
        expect(tablet.locator("[data-step=finished]")).to_be_visible()

    row = pickers.locator("tr[data-picker='Olivia Opérateur']")
    expect(row.locator("[data-figure=done]")).to_have_text("1")
    expect(board.locator("#panel-throughput")).to_contain_text("Lignes préparées aujourd'hui : 1")
    assert board.evaluate("window.sameDocument") is True
    report(board, "pick on server B", confirmed_at)


def test_a_dispatch_run_committed_by_the_worker_shows_on_the_board(
    boards_db: DatabaseUrls, test_settings: Settings, day: Day, board: Page
) -> None:
    async def queue_a_run(db: Database) -> tuple[int, dict[str, Any]]:
        destinations = await make_destinations(db, Dest("MAG-B", 2))
        await make_order(db, day.site_id, destinations["MAG-B"], [("SKU-YOG", 6)], priority=2)
        return await start_dispatch_run(
            db,
            day.site_id,
            RunOptions(),
            expected_inputs=None,
            actor=ACTOR,
            idempotency_key=uuid.uuid4().hex,
            now=datetime.now(UTC),
            inline_max_lines=0,  # always the worker's
            pick_list_max_tasks=40,
        )

    watch(board, "activity")
    requested_at = time.time() * 1000
    status, answer = run(boards_db, test_settings, queue_a_run)
    assert status == 202, answer
    expect(board.locator("#panel-activity")).to_contain_text(
        f"Répartition {answer['run_id']} validée", timeout=30_000
    )
    report(board, "run committed by the worker (from its request, queue included)", requested_at)


def test_the_board_recovers_after_every_database_connection_is_cut(
    boards_db: DatabaseUrls, test_settings: Settings, day: Day, board: Page
) -> None:
    """What a PostgreSQL restart does to the web process: its LISTEN connection and its pool are gone."""

    async def cut_then_receive(db: Database) -> float:
        async with db.reads() as session:
            cut = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert cut >= 2  # at least both servers' listeners
        change = StockChange(
            MovementKind.RECEIPT,
            day.site_id,
            "SKU-YOG",
            3,
            target="B-01-01",
            lot="L1",
            document="BL-APRES-COUPURE",
        )
        await record_stock_change(
            db,
            change,
            actor=ACTOR,
            idempotency_key=uuid.uuid4().hex,
            now=datetime.now(UTC),
        )
        return time.time() * 1000

    board.evaluate("window.sameDocument = true")
    watch(board, "activity")
    received_at = run(boards_db, test_settings, cut_then_receive)
    expect(board.locator("#panel-activity")).to_contain_text("BL-APRES-COUPURE")
    expect(board.locator(".board")).to_have_attribute("data-live", "on")
    assert board.evaluate("window.sameDocument") is True
    report(board, "receipt right after the cut", received_at)


def test_a_board_whose_stream_is_blocked_says_so_and_keeps_itself_right_by_polling(
    servers: tuple[str, str], boards_db: DatabaseUrls, test_settings: Settings, day: Day, browser: Browser
) -> None:
    """A proxy that refuses server-sent events: the board polls its panels instead (every 2 s here)."""
    with window(browser, servers[0], "supervisor", DESKTOP, blocked="**/board/events") as page:
        page.goto(f"{servers[0]}/sites/LYS/board")
        expect(page.locator(".board")).to_have_attribute("data-live", "off")
        expect(page.locator(".live-off")).to_be_visible()

        async def receive(db: Database) -> None:
            change = StockChange(
                MovementKind.RECEIPT, day.site_id, "SKU-FLOUR", 1, target="A-01-01", document="BL-SANS-FLUX"
            )
            await record_stock_change(
                db, change, actor=ACTOR, idempotency_key=uuid.uuid4().hex, now=datetime.now(UTC)
            )

        run(boards_db, test_settings, receive)
        expect(page.locator("#panel-activity")).to_contain_text("BL-SANS-FLUX")


def test_a_person_never_receives_events_of_a_site_outside_their_scope(
    servers: tuple[str, str],
    boards_db: DatabaseUrls,
    test_settings: Settings,
    day: Day,
    browser: Browser,
    board: Page,
) -> None:
    with window(browser, servers[0], "lille_operator", TABLET) as lille:
        lille.goto(f"{servers[0]}/")
        assert lille.evaluate("fetch('/sites/LYS/live').then(r => r.status)") == 403
        lille.evaluate(
            """() => {
                window.heard = [];
                const source = new EventSource("/sites/LIL/live");
                for (const topic of ["orders", "picking", "stock", "dispatch"]) {
                    source.addEventListener(topic, () => window.heard.push(topic));
                }
                window.opened = new Promise((resolve) => source.addEventListener("open", resolve));
            }"""
        )
        lille.evaluate("window.opened")
        lille.wait_for_function("() => window.heard.length === 4")  # each topic once, as the stream opens

        async def receive_at(db: Database, site: str, location: str, document: str) -> None:
            async with db.reads() as session:
                site_id = await session.scalar(text("SELECT id FROM sites WHERE code = :c"), {"c": site})
            change = StockChange(
                MovementKind.RECEIPT, site_id, "SKU-FLOUR", 2, target=location, document=document
            )
            await record_stock_change(
                db, change, actor=ACTOR, idempotency_key=uuid.uuid4().hex, now=datetime.now(UTC)
            )

        run(boards_db, test_settings, lambda db: receive_at(db, "LYS", "A-01-01", "BL-LYON-SEUL"))
        expect(board.locator("#panel-activity")).to_contain_text("BL-LYON-SEUL")  # Lyon's change went out
        lille.wait_for_timeout(1000)
        assert lille.evaluate("window.heard.length") == 4  # ... and not to a Lille operator

        run(boards_db, test_settings, lambda db: receive_at(db, "LIL", "A-01-01", "BL-LILLE"))
        lille.wait_for_function("() => window.heard.length === 5")
        assert lille.evaluate("window.heard[4]") == "stock"
        streams = open_streams(servers[0])
    # A client that leaves is released at once (its subscription with it), not at its next keep-alive.
    deadline = time.monotonic() + 10
    while open_streams(servers[0]) != streams - 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_streams(servers[0]) == streams - 1


def open_streams(base_url: str) -> float:
    """Server A's open live streams, from its own metrics (the test runs on the server's machine)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    found = re.search(r"^dispatch_live_subscribers(?:\{[^}]*\})? (\S+)$", metrics, re.M)
    assert found, "no dispatch_live_subscribers metric"
    return float(found.group(1))


def test_a_wall_screen_rotates_between_sites(servers: tuple[str, str], browser: Browser) -> None:
    with window(browser, servers[0], "supervisor", {"width": 1920, "height": 1080}) as wall:
        wall.goto(f"{servers[0]}/sites/LYS/board/wall?rotate=LYS,LIL&every=10")
        expect(wall.locator(".mainnav")).to_have_count(0)
        expect(wall.locator(".board")).to_have_attribute("data-live", "on")
        wall.wait_for_url("**/sites/LIL/board/wall?rotate=LYS%2CLIL&every=10", timeout=30_000)
        expect(wall.locator(".wall-title")).to_contain_text("Lille")
        expect(wall.locator(".board")).to_have_attribute("data-live", "on")
