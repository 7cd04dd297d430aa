"""axe-core on every page a person reaches: serious and critical violations fail the test."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.db.urls import DatabaseUrls
from tests.conftest import PERSONAS
from tests.e2e.conftest import assert_accessible, assert_fits_width, login


def test_login_page_in_french(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert_accessible(page)


def test_login_page_in_english(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.locator(".lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)


def test_login_page_with_an_error(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.locator("#f-username").fill("nobody")
    page.locator("#f-password").fill("nothing-at-all")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page)


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_home_page(page: Page, live_server: str, role: str) -> None:
    login(page, live_server, PERSONAS[role])
    expect(page.get_by_role("heading", level=1)).to_contain_text(PERSONAS[role].full_name)
    assert_accessible(page)


@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/new", "/admin/users/olivia"])
def test_admin_page(page: Page, live_server: str, path: str) -> None:
    login(page, live_server, PERSONAS["admin"])
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == 200
    assert_accessible(page)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/users", 403),
        ("/no/such/page", 404),
    ],
)
def test_error_page(page: Page, live_server: str, path: str, status: int) -> None:
    login(page, live_server, PERSONAS["operator"])
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == status
    expect(page.locator(".error-code")).to_have_text(str(status))
    assert_accessible(page)


def test_the_check_itself_catches_a_violation(page: Page, live_server: str) -> None:
    """Guards against a silently green suite: an unlabelled field and faint text must be reported."""
    page.goto(f"{live_server}/login")
    page.evaluate("""() => {
        const form = document.querySelector('main form');
        form.insertAdjacentHTML('beforeend',
            '<input id="unlabelled" type="text"><p id="faint" style="color:#ccc;background:#fff">faint</p>');
    }""")
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_accessible(page)
    assert "label (critical)" in str(failure.value)
    assert "#unlabelled" in str(failure.value)
    assert "color-contrast (serious)" in str(failure.value)


# ---------------------------------------------------------------- stock pages


@pytest.fixture(scope="module")
def stock_at_lyon(live_server: str, template_urls: DatabaseUrls) -> None:
    """A few locations, two products and their stock at LYS, written into the e2e server's database.

    Plain SQL through psycopg's synchronous driver: no event loop is needed next to Playwright's. The
    ledger and the balances agree (24 water received, 18 put away; yoghurts in an expired and a good lot).
    """
    import psycopg

    admin = template_urls.with_database("postgres")
    with psycopg.connect(admin.libpq, autocommit=True) as conn:
        row = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'e2e\\_%' ORDER BY oid DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    server_db = template_urls.with_database(row[0])
    with psycopg.connect(server_db.libpq) as conn:
        if conn.execute("SELECT 1 FROM products WHERE sku = 'A11Y-WATER'").fetchone():
            return
        site, olivia = conn.execute(
            "SELECT (SELECT id FROM sites WHERE code = 'LYS'),"
            " (SELECT id FROM users WHERE username = 'olivia')"
        ).fetchone()
        loc = {}
        for code, kind, seq in (
            ("A11Y-R1", "receiving", 10),
            ("A11Y-A-01", "storage", 20),
            ("A11Y-A-02", "storage", 30),
        ):
            loc[code] = conn.execute(
                """INSERT INTO locations
                   (site_id, code, barcode, kind, zone, pick_seq, is_active, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, 'E', %s, true, now(), now()) RETURNING id""",
                (site, code, f"LOC-LYS-{code}", kind, seq),
            ).fetchone()[0]
        product = {}
        for sku, name, pack, lots in (
            ("A11Y-WATER", "Eau minérale 1,5 L", 6, False),
            ("A11Y-YOG", "Yaourt nature x4", 12, True),
        ):
            product[sku] = conn.execute(
                """INSERT INTO products (sku, name, unit, pack_size, lot_tracked, expiry_tracked,
                                         round_up_packs, is_active, created_at, updated_at)
                   VALUES (%s, %s, 'unit', %s, %s, %s, false, true, now(), now()) RETURNING id""",
                (sku, name, pack, lots, lots),
            ).fetchone()[0]
        conn.execute(
            """INSERT INTO product_barcodes (product_id, code, kind, units, created_at, updated_at)
               VALUES (%s, '03760000099994', 'gtin', 1, now(), now())""",
            (product["A11Y-WATER"],),
        )
        lot = {}
        for code, expiry in (("L-OLD", "2020-01-31"), ("L-NEW", "2099-12-31")):
            lot[code] = conn.execute(
                """INSERT INTO lots (product_id, code, expiry, created_at, updated_at)
                   VALUES (%s, %s, %s, now(), now()) RETURNING id""",
                (product["A11Y-YOG"], code, expiry),
            ).fetchone()[0]
        water, yog = product["A11Y-WATER"], product["A11Y-YOG"]
        for kind, pid, lot_id, source, target, qty in (
            ("receipt", water, None, None, loc["A11Y-R1"], 24),
            ("putaway", water, None, loc["A11Y-R1"], loc["A11Y-A-01"], 18),
            ("receipt", yog, lot["L-NEW"], None, loc["A11Y-A-02"], 12),
            ("receipt", yog, lot["L-OLD"], None, loc["A11Y-A-02"], 3),
        ):
            conn.execute(
                """INSERT INTO stock_movements (kind, product_id, lot_id, from_location_id, to_location_id,
                                                quantity, document, actor_id, occurred_at)
                   VALUES (%s, %s, %s, %s, %s, %s, 'E2E', %s, now())""",
                (kind, pid, lot_id, source, target, qty, olivia),
            )
        for pid, location, lot_id, on_hand, reserved in (
            (water, loc["A11Y-R1"], None, 6, 0),
            (water, loc["A11Y-A-01"], None, 18, 4),
            (yog, loc["A11Y-A-02"], lot["L-NEW"], 12, 0),
            (yog, loc["A11Y-A-02"], lot["L-OLD"], 3, 0),
        ):
            conn.execute(
                """INSERT INTO stock_balances (product_id, location_id, lot_id, on_hand, reserved, updated_at)
                   VALUES (%s, %s, %s, %s, %s, now())""",
                (pid, location, lot_id, on_hand, reserved),
            )


@pytest.mark.parametrize(
    "path",
    [
        "/sites/LYS/stock",
        "/sites/LYS/stock?q=A11Y",
        "/sites/LYS/stock?q=nothing-matches-this",
        "/sites/LYS/products/A11Y-WATER",
        "/sites/LYS/products/A11Y-YOG?kind=receipt",
        "/sites/LYS/locations/A11Y-A-01",
    ],
)
def test_stock_page(stock_at_lyon: None, page: Page, live_server: str, path: str) -> None:
    login(page, live_server, PERSONAS["operator"])
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == 200
    assert_accessible(page)
    assert_fits_width(page, 800, 600)  # an 8" tablet, in landscape and upright


def test_stock_search_answers_as_you_type_and_stays_accessible(
    stock_at_lyon: None, page: Page, live_server: str
) -> None:
    login(page, live_server, PERSONAS["operator"])
    page.goto(f"{live_server}/sites/LYS/stock")
    box = page.locator("#stock-q")
    expect(box).to_be_focused()
    box.press_sequentially("yaourt nature", delay=30)
    expect(page.locator("#stock-results tbody tr")).to_have_count(1)
    expect(page.locator("#stock-results tbody tr td").first).to_have_text("A11Y-YOG")
    page.wait_for_url("**/sites/LYS/stock?q=yaourt*nature")
    assert_accessible(page)
    page.locator("#stock-results a.row-link").first.click()
    page.wait_for_url("**/sites/LYS/products/A11Y-YOG")
    expect(page.locator(".badge-expired")).to_have_count(1)
    page.locator("#h-kind").select_option("putaway")
    expect(page.locator("#history .empty")).to_be_visible()
    page.wait_for_url("**/sites/LYS/products/A11Y-YOG?kind=putaway*")
    assert_accessible(page)


def test_stock_pages_on_a_phone(stock_at_lyon: None, page: Page, live_server: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, PERSONAS["operator"])
    page.goto(f"{live_server}/sites/LYS/products/A11Y-WATER")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)


# ---------------------------------------------------------------- orders and destinations


@pytest.fixture(scope="module")
def orders_at_lyon(stock_at_lyon: None, template_urls: DatabaseUrls) -> int:
    """A destination and a late released order of two lines at LYS (the stock pages' products); its id."""
    import psycopg

    admin = template_urls.with_database("postgres")
    with psycopg.connect(admin.libpq, autocommit=True) as conn:
        row = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'e2e\\_%' ORDER BY oid DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    with psycopg.connect(template_urls.with_database(row[0]).libpq) as conn:
        found = conn.execute("SELECT id FROM dispatch_orders WHERE number = 'A11Y-ORDER-1'").fetchone()
        if found:
            return int(found[0])
        destination = conn.execute(
            """INSERT INTO destinations (code, name, kind, tier, min_units, max_units, is_active,
                                         created_at, updated_at)
               VALUES ('A11Y-MAG', 'Magasin de test', 'store', 1, 6, 600, true, now(), now()) RETURNING id"""
        ).fetchone()[0]
        order = conn.execute(
            """INSERT INTO dispatch_orders (number, site_id, destination_id, state, priority, due_at, source,
                                            units, released_at, created_at, updated_at)
               VALUES ('A11Y-ORDER-1', (SELECT id FROM sites WHERE code = 'LYS'), %s, 'released', 1,
                       now() - interval '1 hour', 'screen', 30, now(), now(), now()) RETURNING id""",
            (destination,),
        ).fetchone()[0]
        for line_no, sku, quantity in ((1, "A11Y-WATER", 18), (2, "A11Y-YOG", 12)):
            conn.execute(
                """INSERT INTO dispatch_order_lines (order_id, line_no, product_id, quantity, allocated,
                                                     picked, shipped, short_picked, created_at, updated_at)
                   VALUES (%s, %s, (SELECT id FROM products WHERE sku = %s), %s, 0, 0, 0, 0, now(), now())""",
                (order, line_no, sku, quantity),
            )
        return int(order)


@pytest.mark.parametrize(
    "path",
    [
        "/sites/LYS/orders",
        "/sites/LYS/orders?state=open&q=A11Y",
        "/sites/LYS/orders/{order}",
        "/sites/LYS/orders/new",
        "/sites/LYS/orders/{order}/edit",
        "/destinations",
        "/destinations/new",
        "/destinations/A11Y-MAG",
    ],
)
def test_order_and_destination_page(orders_at_lyon: int, page: Page, live_server: str, path: str) -> None:
    login(page, live_server, PERSONAS["supervisor"])
    response = page.goto(live_server + path.format(order=orders_at_lyon))
    assert response is not None
    assert response.status == 200
    assert_accessible(page)


def test_a_line_is_added_to_a_new_order_without_losing_what_was_typed(
    orders_at_lyon: int, page: Page, live_server: str
) -> None:
    login(page, live_server, PERSONAS["supervisor"])
    page.goto(f"{live_server}/sites/LYS/orders/new")
    page.locator("#l-product-1").fill("A11Y-WATER")
    page.locator("#l-quantity-1").fill("12")
    page.get_by_role("button", name=re.compile("^(Ajouter une ligne|Add a line)$")).click()
    expect(page.locator("input[name=line_product]")).to_have_count(4)
    expect(page.locator("#l-product-1")).to_have_value("A11Y-WATER")
    assert_accessible(page)


def test_a_new_orders_product_is_found_by_words_of_its_name(
    orders_at_lyon: int, page: Page, live_server: str
) -> None:
    login(page, live_server, PERSONAS["supervisor"])
    page.goto(f"{live_server}/sites/LYS/orders/new")
    page.locator("#l-product-1").press_sequentially("yaourt nat", delay=20)
    choice = page.locator("#l-found-1 button[data-value='A11Y-YOG']")
    expect(choice).to_contain_text("Yaourt nature x4")
    assert_accessible(page)
    choice.click()
    expect(page.locator("#l-product-1")).to_have_value("A11Y-YOG")
    expect(page.locator("#l-found-1 .is-found")).to_contain_text("Disponible ici : 15")
    expect(page.locator("#l-quantity-1")).to_be_focused()


def test_an_order_is_created_then_edited_in_french(orders_at_lyon: int, page: Page, live_server: str) -> None:
    login(page, live_server, PERSONAS["supervisor"])
    page.goto(f"{live_server}/sites/LYS/orders/new")
    page.locator("#f-destination").select_option("A11Y-MAG")
    page.locator("#l-product-1").fill("A11Y-WATER")
    page.locator("#l-quantity-1").fill("12")
    page.get_by_role("button", name="Créer la commande").click()
    expect(page.locator(".badge-big")).to_have_text("Brouillon")
    page.get_by_role("link", name="Modifier la commande").click()
    expect(page.locator("h1")).to_contain_text("Modifier la commande CMD-")
    expect(page.locator("#l-quantity-1")).to_have_value("12")
    page.locator("#l-quantity-1").fill("24")
    page.locator("#l-product-2").fill("A11Y-YOG")
    expect(page.locator("#l-found-2 .is-found")).to_contain_text("Yaourt nature x4")
    page.locator("#l-quantity-2").fill("4")
    page.get_by_role("button", name="Ajouter une ligne").click()
    expect(page.locator("input[name=line_product]")).to_have_count(3)
    page.get_by_role("button", name="Retirer la ligne 1").click()  # taken out, the others kept as typed
    expect(page.locator("input[name=line_product]")).to_have_count(2)
    expect(page.locator("#l-product-1")).to_have_value("A11Y-YOG")
    page.locator("#l-product-2").fill("A11Y-WATER")
    page.locator("#l-quantity-2").fill("24")
    assert_accessible(page)
    page.get_by_role("button", name="Enregistrer les modifications").click()
    lines = page.locator("table.order-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("A11Y-YOG")
    expect(lines.nth(1)).to_contain_text("A11Y-WATER")
    expect(lines.nth(1).locator("td").nth(3)).to_have_text("24")
    expect(page.locator(".badge-big")).to_have_text("Brouillon")
    number = (page.locator("h1").text_content() or "").split()[-1]
    # Released from the list of drafts, ticked among others.
    page.goto(f"{live_server}/sites/LYS/orders?state=draft")
    assert_accessible(page)
    page.get_by_label(f"Lancer {number}").check()
    page.get_by_role("button", name="Lancer les brouillons cochés").click()
    expect(page.locator(".alert-ok")).to_contain_text("1 commande lancée")
    expect(page.locator("#order-results")).not_to_contain_text(number)


@pytest.mark.parametrize("path", ["/sites/LYS/board", "/sites/LYS/board/wall?rotate=LYS,LIL"])
def test_board_page(orders_at_lyon: int, page: Page, live_server: str, path: str) -> None:
    login(page, live_server, PERSONAS["supervisor"])
    response = page.goto(live_server + path)
    assert response is not None
    assert response.status == 200
    expect(page.locator(".board")).to_have_attribute("data-live", "on")  # the stream's panels are in
    assert_accessible(page)
    # On a 10" tablet in landscape, and a wall screen, no panel hides a column to scroll to.
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        hidden = page.evaluate(
            "[...document.querySelectorAll('.board-panel')].map(p => [p.id, p.scrollWidth - p.clientWidth])"
        )
        assert all(extra <= 0 for _panel, extra in hidden), f"at {width} px: {hidden}"
