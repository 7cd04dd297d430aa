"""A whole day of dispatch in a real Chromium, in French: the supervisor imports the day's orders,
previews and commits a dispatch run; an operator picks the list on a tablet (one short pick, typed as a
scanner types); the shipments are closed and a delivery note is printed to PDF.

At the Lille site, with products, locations and destinations of its own, so no other test sees them.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect
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
from tests.e2e.conftest import ARTIFACTS, TABLET, assert_accessible, assert_fits_width, login, receive_stock


def _gtin(body: str) -> str:
    return next(body + d for d in "0123456789" if validate_gtin(body + d))


JUICE_GTIN, RICE_GTIN = _gtin("0376000007701"), _gtin("0376000007702")
LOCATIONS = [("JOUR-QR", "receiving", 5), ("JOUR-A1", "storage", 10), ("JOUR-A2", "storage", 20)]
LOCATIONS += [("JOUR-QE", "dispatch", 90)]
PRODUCTS = [
    ProductData("JOUR-JUS", "Jus d'orange 1 L", pack_size=6, gtins=(JUICE_GTIN,)),
    ProductData("JOUR-RIZ", "Riz long 1 kg", pack_size=10, gtins=(RICE_GTIN,)),
]
DESTINATIONS = [
    ("JOUR-M1", "Magasin Roubaix", 1),
    ("JOUR-M2", "Magasin Tourcoing", 2),
    ("JOUR-M3", "Agence Douai", 2),
]
STOCK = [("JOUR-JUS", "JOUR-A1", 60), ("JOUR-RIZ", "JOUR-A2", 50)]
# The supervisor's screens on a tablet too: 10" and 9.7" ones in landscape, 8" ones in landscape and upright.
TABLETS = (1280, 1024, 800, 600)
# Where the lists' Take buttons end, and how much of a table is hidden sideways: measured in one go, as the
# lists redraw themselves when picking changes at the site.
# Cells of the lists laid out as anything but table cells (a flex cell draws its border off the row's line).
NOT_CELLS = """() => [...document.querySelectorAll('.pick-lists td')]
  .map(c => getComputedStyle(c).display).filter(d => d !== 'table-cell')"""
# How many lines an element's text takes.
LINES = """selector => {
  const range = document.createRange();
  range.selectNodeContents(document.querySelector(selector));
  return range.getClientRects().length;
}"""
# The pick screen's product box, and the other fact boxes on its row: their widths.
FACT_WIDTHS = """() => {
  const product = document.querySelector('.pick-what').getBoundingClientRect();
  const row = [...document.querySelectorAll('.pick-task > div:not(.pick-what)')]
    .map(box => box.getBoundingClientRect()).filter(box => box.top === product.top);
  return [product, ...row].map(box => Math.round(box.width));
}"""
MEASURE_LISTS = """() => [
  Math.max(...[...document.querySelectorAll('.is-open .btn-big')].map(e => e.getBoundingClientRect().right)),
  Math.max(...[...document.querySelectorAll('.table-scroll')].map(r => r.scrollWidth - r.clientWidth)),
]"""
DUE = (date.today() + timedelta(days=1)).strftime("%d/%m/%Y")
ORDERS_CSV = f"""\
Commande;Entrepôt;Destinataire;Article;Quantité;Échéance;Priorité;Lancer
JOUR-C1;LIL;JOUR-M1;JOUR-JUS;30;{DUE};;oui
JOUR-C1;LIL;JOUR-M1;JOUR-RIZ;20;{DUE};;oui
JOUR-C2;LIL;JOUR-M2;JOUR-JUS;30;{DUE};;oui
JOUR-C3;LIL;JOUR-M3;JOUR-JUS;24;{DUE};;oui
JOUR-C3;LIL;JOUR-M3;JOUR-RIZ;40;{DUE};;oui
"""


async def _set_up(urls: DatabaseUrls, settings: Settings) -> None:
    db = Database(sqlalchemy_config(urls, settings.database, application_name="e2e-day"))
    try:
        async with db.transaction() as session:
            await upsert_locations(
                session,
                [check_location(LocationData("LIL", code, kind, "JA", seq)) for code, kind, seq in LOCATIONS],
            )
            await upsert_products(session, [check_product(product) for product in PRODUCTS])
            await session.execute(
                text("""INSERT INTO destinations (code, name, kind, tier, is_active, created_at, updated_at)
                        SELECT c, n, 'store', t, true, now(), now()
                        FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:tiers AS int[]))
                             AS d(c, n, t)"""),
                {
                    "codes": [d[0] for d in DESTINATIONS],
                    "names": [d[1] for d in DESTINATIONS],
                    "tiers": [d[2] for d in DESTINATIONS],
                },
            )
            site_id = (await session.execute(text("SELECT id FROM sites WHERE code = 'LIL'"))).scalar_one()
        await receive_stock(db, site_id, STOCK, "e2e-day")
    finally:
        await db.dispose()


@pytest.fixture(scope="module", autouse=True)
def lille(live_database: DatabaseUrls, test_settings: Settings) -> DatabaseUrls:
    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop running in this thread
        pool.submit(asyncio.run, _set_up(live_database, test_settings)).result()
    return live_database


RESERVED = (
    "SELECT sum(b.reserved) FROM stock_balances b JOIN products p ON p.id = b.product_id "
    "WHERE p.sku LIKE 'JOUR-%'"
)
SHORT = (
    "SELECT sum(t.short) FROM pick_tasks t JOIN products p ON p.id = t.product_id WHERE p.sku LIKE 'JOUR-%'"
)
SHIPMENTS = "SELECT count(*) FROM shipments s JOIN destinations d ON d.id = s.destination_id "


def query(urls: DatabaseUrls, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(urls.libpq) as connection:
        return connection.execute(sql, params or None).fetchall()  # None: a `%` in LIKE stays a `%`


def scan(page: Page, code: str) -> None:
    """A keyboard-wedge scanner: fast keystrokes into the focused field, then Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def pick_the_list(tablet: Page, *, short_first: bool) -> int:
    """Pick every task of the open list in walking order; the first one short by a pack. Returns tasks."""
    flow = tablet.locator("[data-scan-form]")
    done = 0
    while tablet.locator("[data-step=finished]").count() == 0:
        expect(flow).to_have_attribute("data-step", "location")
        location = tablet.locator(".pick-where dd").inner_text().strip()
        sku = tablet.locator(".pick-what dd").inner_text().split()[0]
        quantity = int(re.sub(r"\D", "", tablet.locator(".pick-qty dd").inner_text()))
        expect(tablet.locator("#f-scan")).to_be_focused()
        scan(tablet, location)
        expect(flow).to_have_attribute("data-step", "product")
        scan(tablet, {"JOUR-JUS": JUICE_GTIN, "JOUR-RIZ": RICE_GTIN}[sku])
        expect(flow).to_have_attribute("data-step", "quantity")
        found = quantity - 6 if short_first and done == 0 else quantity
        tablet.locator("#f-quantity").fill(str(found))
        tablet.locator("button.btn-confirm").click()
        if found < quantity:
            expect(flow).to_have_attribute("data-step", "short")
            expect(tablet.locator(".pick-short")).to_contain_text("manqu")
            tablet.locator("button[value=short]").click()
        done += 1
        expect(tablet.locator("#flow")).not_to_have_attribute("data-task", str(done))  # the next task came
        tablet.wait_for_timeout(50)
    return done


def test_a_day_of_dispatch_from_the_order_file_to_the_delivery_note(
    browser: Browser, page: Page, live_server: str, lille: DatabaseUrls
) -> None:
    # 1. The supervisor imports the day's orders.
    login(page, live_server, PERSONAS["supervisor"])
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.goto(f"{live_server}/imports")
    picker = page.locator("#f-file").bounding_box()
    assert picker and picker["height"] >= 44, f"the file button is a {picker} target on a tablet"
    page.locator("input[name=kind][value=orders]").check()
    page.locator("#f-file").set_input_files(
        {"name": "commandes.csv", "mimeType": "text/csv", "buffer": ORDERS_CSV.encode("utf-8")}
    )
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".alert-ok")).to_be_visible()
    assert query(
        lille, "SELECT count(*) FROM dispatch_orders WHERE number LIKE 'JOUR-C%' AND state = 'released'"
    ) == [(3,)]

    # 2. Preview the run: the explanation shows who is short and why; then commit it.
    page.goto(f"{live_server}/sites/LIL/dispatch/")
    expect(page.locator("h1")).to_contain_text("Répartition")
    page.get_by_role("button", name="Aperçu").click()
    expect(page.locator("#preview table.explanation")).to_be_visible()
    expect(page.locator("#preview")).to_contain_text("JOUR-JUS")
    expect(page.locator("#preview .chart")).to_be_visible()
    assert_accessible(page)
    assert_fits_width(page, *TABLETS)
    page.get_by_role("button", name="Valider la répartition").click()
    page.wait_for_url(re.compile(r"/sites/LIL/dispatch/runs/\d+$"))
    expect(page.locator(".run-committed")).to_have_text("Validée")
    assert_accessible(page)
    assert_fits_width(page, *TABLETS)
    assert query(lille, RESERVED) == [(110,)]
    # Say it was committed by mistake: undone, its stock goes back and its orders wait; then committed again.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Annuler cette répartition").click()
    expect(page.locator("#run-undo .alert-info")).to_contain_text("Annulée par")
    expect(page.locator(".run-undone, .badge-cancelled").first).to_be_visible()
    assert query(lille, RESERVED) == [(0,)]
    assert_accessible(page)
    page.goto(f"{live_server}/sites/LIL/dispatch/")
    page.get_by_role("button", name="Aperçu").click()
    expect(page.locator("#preview table.explanation")).to_be_visible()
    page.get_by_role("button", name="Valider la répartition").click()
    page.wait_for_url(re.compile(r"/sites/LIL/dispatch/runs/\d+$"))
    expect(page.locator(".run-committed")).to_have_text("Validée")
    page.goto(f"{live_server}/sites/LIL/orders")
    assert_fits_width(page, *TABLETS)
    reserved = query(lille, RESERVED)
    assert reserved == [(110,)]  # every pack: 10 of juice (M1 5, M2 3, M3 2), 5 of rice (M1 2, M3 3)

    # 3. An operator picks the list on a tablet, the first task short by a pack.
    context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport=TABLET)
    tablet = context.new_page()
    try:
        login(tablet, live_server, PERSONAS["lille_operator"])
        tablet.goto(f"{live_server}/sites/LIL/picking")
        assert tablet.locator(".pick-lists td").count() and tablet.evaluate(NOT_CELLS) == []
        # On an 8" tablet held upright each list is a card, with its Take button across it.
        upright = context.new_page()
        upright.set_viewport_size({"width": 600, "height": TABLET["height"]})
        upright.goto(f"{live_server}/sites/LIL/picking")
        expect(upright.locator("tr.is-open .btn-big").first).to_be_visible()
        right, hidden = upright.evaluate(MEASURE_LISTS)
        assert right <= 600 and hidden <= 0, f"Take buttons end at {right} px; {hidden} px hidden sideways"
        assert_fits_width(upright, 600)
        # Its pick screen at 600 and 1024 px: the location code on one line, the product (the longest fact)
        # in the widest box of its row, nothing wider than the window.
        upright.goto(live_server + (upright.locator("tr.is-open a").first.get_attribute("href") or ""))
        for width in (600, 1024):
            upright.set_viewport_size({"width": width, "height": TABLET["height"]})
            assert upright.evaluate(LINES, ".pick-where dd") == 1, f"the location code wraps at {width} px"
            product, *others = upright.evaluate(FACT_WIDTHS)
            assert product > max(others), f"at {width} px the product's box is {product} px, others {others}"
        assert_fits_width(upright, 600, 1024)
        upright.close()
        tablet.goto(f"{live_server}/sites/LIL/picking")
        tablet.locator("tr.is-open a").first.click()
        assert pick_the_list(tablet, short_first=True) >= 4
        expect(tablet.locator("[data-step=finished]")).to_contain_text("Liste terminée")
        assert_accessible(tablet)
    finally:
        context.close()
    assert query(lille, SHORT) == [(6,)]

    # 4. Every destination's shipment is closed (what ships checked first); a delivery note is printed to PDF.
    page.goto(f"{live_server}/sites/LIL/shipments")
    first = page.locator("form.ship-card").first
    first.locator(".ship-contents summary").click()
    expect(first.locator(".ship-contents tbody tr").first).to_contain_text("JOUR-")
    assert_accessible(page)
    assert_fits_width(page, *TABLETS)
    while page.locator("form.ship-card").count():
        page.locator("form.ship-card button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/sites/LIL/shipments/\d+$"))
        page.goto(f"{live_server}/sites/LIL/shipments")
    assert query(lille, SHIPMENTS + "WHERE d.code LIKE 'JOUR-%'") == [(3,)]
    backorders = query(lille, "SELECT number FROM dispatch_orders WHERE number LIKE 'JOUR-C%-R1'")
    assert backorders, "the short pick and the shortage become a backorder"
    # The order's page says where its stock went: its lists, its shipment, its backorder.
    [(order_id,)] = query(
        lille, "SELECT id FROM dispatch_orders WHERE number = %s", (backorders[0][0].removesuffix("-R1"),)
    )
    page.goto(f"{live_server}/sites/LIL/orders/{order_id}")
    expect(page.locator(".order-trail-lists tbody tr").first).to_contain_text("Terminée")
    expect(page.locator(".order-trail-shipments")).to_contain_text("Bon de livraison")
    expect(page.get_by_role("link", name=backorders[0][0])).to_be_visible()
    assert_accessible(page)
    assert_fits_width(page, *TABLETS)
    shipment = query(
        lille, "SELECT s.id, s.number " + SHIPMENTS[len("SELECT count(*) ") :] + "WHERE d.code = 'JOUR-M1'"
    )[0]
    page.goto(f"{live_server}/sites/LIL/shipments/{shipment[0]}/note")
    expect(page.locator("body")).to_contain_text("Bon de livraison")
    expect(page.locator("body")).to_contain_text(shipment[1])
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = page.pdf(path=str(ARTIFACTS / "bon-de-livraison.pdf"), format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 2_000
