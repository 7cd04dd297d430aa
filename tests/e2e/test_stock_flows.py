"""The scan flows in a real Chromium, in French, on a tablet, typed the way a keyboard-wedge scanner types."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.domain.scan import validate_gtin
from app.services.catalog import (
    LocationData,
    ProductData,
    check_location,
    check_product,
    upsert_locations,
    upsert_products,
)
from app.settings import Settings
from tests.conftest import PERSONAS
from tests.e2e.conftest import assert_accessible, login, receive_stock

# A catalogue of its own at LYS, so that no other e2e test sees or changes this stock.
LOCATIONS = [("QUAI-R9", "receiving"), ("E2E-01", "storage"), ("E2E-02", "storage"), ("E2E-03", "storage")]
LOCATIONS += [("E2E-04", "storage"), ("E2E-05", "storage")]


def _gtin(body: str) -> str:
    """body (13 digits) with the check digit that makes it a valid GTIN-14."""
    return next(body + d for d in "0123456789" if validate_gtin(body + d))


YOG_GTIN, WATER_GTIN = _gtin("0376000009901"), _gtin("0376000009902")
PRODUCTS = [
    ProductData(
        "E2E-YOG", "Yaourt brebis x4", pack_size=12, lot_tracked=True, expiry_tracked=True, gtins=(YOG_GTIN,)
    ),
    ProductData("E2E-FLOUR", "Farine T65 1 kg", pack_size=10),
    ProductData("E2E-WATER", "Eau gazeuse 1 L", pack_size=6, gtins=(WATER_GTIN,)),
]
STOCK = [("E2E-FLOUR", "E2E-01", 10), ("E2E-WATER", "E2E-03", 4), ("E2E-WATER", "E2E-05", 4321)]
GS1_YOG = "]C1" + "01" + YOG_GTIN + "17261231" + "10LOT-E2E" + "\x1d" + "3012"

SCAN_FIELD = "#f-scan"
FORM = "[data-scan-form]"


async def _set_up(urls: DatabaseUrls, settings: Settings) -> None:
    db = Database(sqlalchemy_config(urls, settings.database, application_name="e2e-setup"))
    try:
        async with db.transaction() as session:
            locations = [check_location(LocationData("LYS", code, kind)) for code, kind in LOCATIONS]
            await upsert_locations(session, locations)
            await upsert_products(session, [check_product(product) for product in PRODUCTS])
        async with db.sessions() as session:
            site_id = (await session.execute(text("SELECT id FROM sites WHERE code = 'LYS'"))).scalar_one()
        await receive_stock(db, site_id, STOCK, "e2e-setup")
    finally:
        await db.dispose()


@pytest.fixture(scope="module", autouse=True)
def catalogue(live_database: DatabaseUrls, test_settings: Settings) -> DatabaseUrls:
    """Locations, products and stock of this module, through the services (idempotent upserts)."""
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one (see `browser`).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _set_up(live_database, test_settings)).result()
    return live_database


def on_hand(urls: DatabaseUrls, sku: str, location: str) -> int:
    with psycopg.connect(urls.libpq) as connection:
        row = connection.execute(
            """SELECT coalesce(sum(b.on_hand), 0) FROM stock_balances b
               JOIN products p ON p.id = b.product_id JOIN locations l ON l.id = b.location_id
               JOIN sites s ON s.id = l.site_id
               WHERE s.code = 'LYS' AND p.sku = %s AND l.code = %s""",
            (sku, location),
        ).fetchone()
    assert row is not None
    return int(row[0])


def count_corrections(urls: DatabaseUrls, location: str) -> list[tuple[int, bool]]:
    with psycopg.connect(urls.libpq) as connection:
        rows = connection.execute(
            """SELECT m.quantity, m.from_location_id IS NOT NULL FROM stock_movements m
               JOIN locations l ON l.id = coalesce(m.from_location_id, m.to_location_id)
               WHERE m.kind = 'count_correction' AND l.code = %s""",
            (location,),
        ).fetchall()
    return [(int(q), bool(out)) for q, out in rows]


# ---------------------------------------------------------------- helpers


def scan(page: Page, code: str) -> None:
    """What a keyboard-wedge scanner does: fast keystrokes into whatever has the focus, then Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def at_step(page: Page, step: str) -> None:
    """The form reached `step`, and the scan field has the focus again, ready for the next scan."""
    expect(page.locator(FORM)).to_have_attribute("data-step", step)
    expect(page.locator(SCAN_FIELD)).to_be_focused()


def open_flow(page: Page, base_url: str, flow: str) -> None:
    login(page, base_url, PERSONAS["operator"])
    page.locator(f"a.tile[href='/sites/LYS/{flow}']").click()  # from the home page, as an operator would
    page.wait_for_url(f"{base_url}/sites/LYS/{flow}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")


def press(page: Page, action: str) -> None:
    """A tap on one of the step's buttons (Next, Confirm, Add the line, Finish the count)."""
    page.locator(f".scan-actions button[value={action}]").click()


def key_in(page: Page, selector: str, value: str) -> None:
    """A person taps a field and types, at a person's pace."""
    page.locator(selector).click()
    page.locator(selector).press("Control+A")
    page.keyboard.type(value, delay=90)


# ---------------------------------------------------------------- the flows


def test_receiving_with_a_gs1_scan(page: Page, live_server: str, catalogue: DatabaseUrls) -> None:
    open_flow(page, live_server, "receive")
    field = page.locator(SCAN_FIELD)
    at_step(page, "target")
    expect(field).to_have_attribute("inputmode", "none")  # no screen keyboard over the form
    if not page.evaluate("'BarcodeDetector' in window"):
        expect(page.locator("[data-scan-camera]")).to_be_hidden()

    scan(page, "LOC-LYS-QUAI-R9")
    at_step(page, "product")
    scan(page, GS1_YOG)
    at_step(page, "details")
    expect(page.locator("#f-quantity")).to_have_value("12")
    expect(page.locator("#f-lot")).to_have_value("LOT-E2E")
    expect(page.locator("#f-expiry")).to_have_value("2026-12-31")
    expect(page.locator("body")).to_have_attribute("data-scan-feedback", "ok")
    assert_accessible(page)

    press(page, "next")
    at_step(page, "confirm")
    expect(page.locator(".scan-summary")).to_contain_text("LOT-E2E")
    press(page, "confirm")
    at_step(page, "product")  # same dock, next product
    expect(page.locator(".scan-message.is-ok")).to_contain_text("E2E-YOG")
    expect(page.locator("#recent")).to_contain_text("LOT-E2E")
    assert on_hand(catalogue, "E2E-YOG", "QUAI-R9") == 12

    manual = page.locator("[data-scan-manual]")
    manual.click()
    expect(manual).to_have_attribute("aria-pressed", "true")
    expect(field).to_have_attribute("inputmode", "text")
    expect(field).to_be_focused()

    # Put away from the dock: the product scanned by its SKU alone, a tap on the lot in stock there fills
    # the lot, and the focus goes back to the scan field.
    page.goto(f"{live_server}/sites/LYS/putaway")
    manual = page.locator("[data-scan-manual]")
    if manual.get_attribute("aria-pressed") == "true":
        manual.click()  # back to the scanner
    scan(page, "LOC-LYS-QUAI-R9")
    at_step(page, "product")
    scan(page, "E2E-YOG")
    at_step(page, "details")
    lot = page.locator(".lot-choice[data-value='LOT-E2E']")
    expect(lot).to_contain_text("12")
    lot.click()
    expect(page.locator("#f-lot")).to_have_value("LOT-E2E")
    expect(field).to_be_focused()


def test_moving_stock_after_keying_the_quantity_by_hand(
    page: Page, live_server: str, catalogue: DatabaseUrls
) -> None:
    open_flow(page, live_server, "move")
    scan(page, "LOC-LYS-E2E-01")
    at_step(page, "product")
    scan(page, "E2E-FLOUR")
    at_step(page, "details")
    key_in(page, "#f-quantity", "3")
    # The scanner fires while the quantity field still has the focus: it is still a scan.
    scan(page, "LOC-LYS-E2E-02")
    at_step(page, "confirm")
    expect(page.locator(".scan-summary")).to_contain_text("E2E-02")
    press(page, "confirm")
    at_step(page, "product")
    expect(page.locator(".scan-message.is-ok")).to_be_visible()
    assert (on_hand(catalogue, "E2E-FLOUR", "E2E-01"), on_hand(catalogue, "E2E-FLOUR", "E2E-02")) == (7, 3)


def test_a_refused_move_is_explained_in_french_with_red_feedback(
    page: Page, live_server: str, catalogue: DatabaseUrls
) -> None:
    open_flow(page, live_server, "move")
    scan(page, "LOC-LYS-E2E-03")
    at_step(page, "product")
    scan(page, WATER_GTIN[1:])  # the EAN-13 printed on the bottle
    at_step(page, "details")
    key_in(page, "#f-quantity", "6")
    scan(page, "LOC-LYS-E2E-04")
    at_step(page, "confirm")
    press(page, "confirm")

    problem = page.locator("#scan-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("seulement 4 en stock, 6 demandés")
    expect(problem).to_contain_text("E2E-03")
    expect(page.locator(".scan-card.scan-error")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-scan-feedback", "error")
    expect(page.locator(SCAN_FIELD)).to_be_focused()
    assert_accessible(page)
    assert (on_hand(catalogue, "E2E-WATER", "E2E-03"), on_hand(catalogue, "E2E-WATER", "E2E-04")) == (4, 0)

    scan(page, "LOC-LYS-NULLE-PART")  # a scan at the confirmation is refused, still in French
    expect(problem).to_be_visible()


def test_a_blind_count_with_a_discrepancy(page: Page, live_server: str, catalogue: DatabaseUrls) -> None:
    def never_shows_the_expected_quantity() -> None:
        shown = re.sub(r"\s", "", page.locator("main").inner_text())  # also "4 321", spaced the French way
        assert "4321" not in shown

    open_flow(page, live_server, "count")
    at_step(page, "location")
    scan(page, "LOC-LYS-E2E-05")
    at_step(page, "product")
    never_shows_the_expected_quantity()
    scan(page, WATER_GTIN)
    at_step(page, "details")
    expect(page.locator("#f-quantity")).to_have_value("")
    never_shows_the_expected_quantity()
    key_in(page, "#f-quantity", "4319")
    page.keyboard.press("Enter")  # typed by hand, so Enter adds the line (it is not a scan)
    at_step(page, "product")
    # What was counted is listed; what was expected, never.
    expect(page.locator(".count-lines")).to_contain_text("E2E-WATER")
    assert_accessible(page)
    never_shows_the_expected_quantity()
    press(page, "finish")
    at_step(page, "location")
    expect(page.locator(".scan-message.is-ok")).to_contain_text("E2E-05")
    never_shows_the_expected_quantity()
    assert count_corrections(catalogue, "E2E-05") == [(2, True)]
    assert on_hand(catalogue, "E2E-WATER", "E2E-05") == 4319


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    """scanner.js runs without an uncaught error through every flow."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []
