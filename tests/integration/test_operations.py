"""The scan flows through the real routes: each scan checked as it comes, each change recorded once."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.db.models import StockMovement, User
from app.domain.ledger import MovementKind as K
from app.services.stock import Actor, StockChange, record_stock_change
from tests.conftest import PERSONAS
from tests.helpers import login, post_form
from tests.integration.stock_fixtures import assert_ledger_equals_balances, make_catalog

HTMX = {"HX-Request": "true"}
GS1_YOGHURT = "]C1" + "0103760000000024" + "17261231" + "10LOT42" + "\x1d" + "3012"
AZERTY_WATER = '"è-àààààààà&è'  # EAN 3760000000017 typed by a QWERTY scanner on an AZERTY layout
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class _FormFields(HTMLParser):
    """What the browser would send from the scan form: hidden state, keyed fields, checked choices."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "data-scan-form" in a:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a["name"] not in ("scan", "_csrf_token"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select and "selected" in a:
            self.fields.append((self.select, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_fields(html: str) -> dict[str, Any]:
    parser = _FormFields()
    parser.feed(html)
    fields: dict[str, Any] = {}
    for name, value in parser.fields:
        if name in fields:
            fields[name] = [*([fields[name]] if isinstance(fields[name], str) else fields[name]), value]
        else:
            fields[name] = value
    return fields


def visible_text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


class ScanScreen:
    """One flow screen as a browser holds it: the last answer, and the form it carries."""

    def __init__(self, client: Any, path: str, *, htmx: bool = True) -> None:
        self.client, self.path, self.htmx = client, path, htmx
        self.html = ""
        self.pages: list[str] = []

    async def open(self) -> Any:
        response = await self.client.get(self.path)
        self._keep(response)
        return response

    async def send(self, **fields: Any) -> Any:
        data = {**form_fields(self.html), **fields}
        response = await post_form(self.client, self.path, data, headers=HTMX if self.htmx else {})
        self._keep(response)
        return response

    async def scan(self, code: str, **fields: Any) -> Any:
        return await self.send(scan=code, **fields)

    async def press(self, action: str, **fields: Any) -> Any:
        return await self.send(action=action, **fields)

    def _keep(self, response: Any) -> None:
        self.html = response.text
        self.pages.append(response.text)

    @property
    def step(self) -> str:
        found = re.search(r'data-step="(\w+)"', self.html)
        assert found, self.html[:2000]
        return found.group(1)

    @property
    def fields(self) -> dict[str, Any]:
        return form_fields(self.html)

    @property
    def problem(self) -> str:
        found = re.search(r'<p id="scan-problem"[^>]*>(.*?)</p>', self.html, re.S)
        return unescape(found.group(1)).strip() if found else ""


def trigger(response: Any) -> dict[str, Any]:
    return json.loads(response.headers.get("hx-trigger-after-settle", "{}"))


@pytest.fixture
async def site(db) -> int:
    return (await make_catalog(db)).site_id


async def sign_in(client: Any, role: str = "operator") -> None:
    persona = PERSONAS[role]
    assert (await login(client, persona.username, persona.password)).status_code == 303


async def stock_in(db, site: int, sku: str, location: str, quantity: int, lot: str | None = None) -> None:
    """Stock put in place through the service, as if received earlier."""
    expiry = date(2027, 1, 31) if sku == "SKU-YOG" else None
    change = StockChange(K.RECEIPT, site, sku, quantity, target=location, lot=lot, expiry=expiry)
    await record_stock_change(
        db, change, actor=Actor(None, "setup"), idempotency_key=uuid.uuid4().hex, now=NOW
    )


async def on_hand(db, sku: str, location: str, lot: str | None = None) -> int:
    async with db.sessions() as s:
        return int(
            await s.scalar(
                text("""
                SELECT coalesce(sum(b.on_hand), 0) FROM stock_balances b
                JOIN products p ON p.id = b.product_id JOIN locations l ON l.id = b.location_id
                LEFT JOIN lots t ON t.id = b.lot_id
                WHERE p.sku = :sku AND l.code = :loc AND l.site_id = (SELECT id FROM sites WHERE code = 'LYS')
                  AND (CAST(:lot AS text) IS NULL OR t.code = :lot)"""),
                {"sku": sku, "loc": location, "lot": lot},
            )
        )


async def movements(db, kind: str | None = None) -> list[StockMovement]:
    async with db.sessions() as s:
        query = select(StockMovement).order_by(StockMovement.id)
        if kind:
            query = query.where(StockMovement.kind == kind)
        return list((await s.scalars(query)).all())


# ---------------------------------------------------------------- receiving


async def test_receiving_a_gs1_label_fills_lot_expiry_and_quantity(client, db, site):
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    assert (await screen.open()).status_code == 200
    assert screen.step == "target"
    assert 'inputmode="none"' in screen.html
    assert "js/scanner.js" in screen.html

    response = await screen.scan("LOC-LYS-QUAI-R1")
    assert (response.status_code, screen.step) == (200, "product")
    assert "scan-ok" in trigger(response)

    response = await screen.scan(GS1_YOGHURT)
    assert (response.status_code, screen.step) == (200, "details")
    assert screen.fields["quantity"] == "12"
    assert screen.fields["lot"] == "LOT42"
    assert screen.fields["expiry"] == "2026-12-31"
    assert 'data-pack="12"' in screen.html  # SKU-YOG comes in packs of 12

    await screen.press("next")
    assert screen.step == "confirm"
    assert "SKU-YOG" in screen.html and "LOT42" in screen.html
    assert await on_hand(db, "SKU-YOG", "QUAI-R1") == 0  # nothing recorded before the confirmation

    response = await screen.press("confirm")
    assert response.status_code == 200
    assert trigger(response) == {"scan-ok": {"recorded": True}}
    assert screen.step == "product"  # the same dock, ready for the next product
    assert screen.fields["target"] == "QUAI-R1"
    assert 'hx-swap-oob="true"' in screen.html  # the list of recent operations is redrawn
    assert await on_hand(db, "SKU-YOG", "QUAI-R1", "LOT42") == 12
    async with db.sessions() as s:
        expiry = await s.scalar(text("SELECT expiry FROM lots WHERE code = 'LOT42'"))
        olivia = await s.scalar(select(User.id).where(User.username == "olivia"))
    assert expiry == date(2026, 12, 31)
    [receipt] = await movements(db)
    assert (receipt.kind, receipt.quantity, receipt.actor_id) == ("receipt", 12, olivia)
    await assert_ledger_equals_balances(db)


async def test_a_scan_mangled_by_an_azerty_keyboard_is_repaired(client, db, site):
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    await screen.open()
    await screen.scan("QUAI-R1")  # a code keyed by hand works as well as the label
    response = await screen.scan(AZERTY_WATER)
    assert (response.status_code, screen.step) == (200, "details")
    assert screen.fields["product"] == "SKU-WATER"
    await screen.scan(AZERTY_WATER)  # the same product again: one more
    assert screen.fields["quantity"] == "1"
    await screen.press("next", quantity="12")
    assert "(2 " in visible_text(screen.html)  # 12 units = 2 packs of 6
    await screen.press("confirm")
    assert await on_hand(db, "SKU-WATER", "QUAI-R1") == 12


async def test_unknown_and_misplaced_scans_are_refused_at_once_with_the_scanned_code(client, db, site):
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    await screen.open()

    response = await screen.scan("LOC-LYS-Z-99-99")
    assert response.status_code == 422
    assert "scan-error" in trigger(response)
    assert "LOC-LYS-Z-99-99" in screen.problem
    assert screen.step == "target"
    assert 'class="card scan-card scan-error"' in screen.html

    await screen.scan("LOC-LYS-A-01-01")  # storage, not a receiving dock
    assert "A-01-01" in screen.problem and screen.step == "target"

    await screen.scan("LOC-LIL-A-01-01")  # another site's label
    assert "LOC-LIL-A-01-01" in screen.problem

    await screen.scan("LOC-LYS-QUAI-R1")
    assert screen.step == "product" and not screen.problem
    response = await screen.scan("NOPE-404")
    assert response.status_code == 422
    assert "NOPE-404" in screen.problem and screen.step == "product"
    await screen.scan("3760000000018")  # a wrong check digit: a misread
    assert "3760000000018" in screen.problem
    assert await movements(db) == []


# ---------------------------------------------------------------- moving stock


async def test_a_move_of_more_than_is_there_is_refused_with_the_facts_in_french(client, db, site):
    await stock_in(db, site, "SKU-FLOUR", "A-01-03", 4)
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/move", htmx=False)  # whole pages, as without JavaScript
    await screen.open()
    await screen.scan("LOC-LYS-A-01-03")
    await screen.scan("SKU-FLOUR")
    assert "Disponible ici : 4" in screen.html  # what can be taken from A-01-03
    await screen.press("next", quantity="6")
    assert screen.step == "target"
    await screen.scan("LOC-LYS-A-01-01")
    assert screen.step == "confirm"
    key = screen.fields["idempotency_key"]

    response = await screen.press("confirm")
    assert response.status_code == 409
    assert '<html lang="fr">' in screen.html
    # "Emplacement A-01-03 : seulement 4 en stock, 6 demandés"
    assert re.search(r"A-01-03\D+4\D+6\b", screen.problem), screen.problem
    assert "scan-error" in screen.html
    assert (await on_hand(db, "SKU-FLOUR", "A-01-03"), await on_hand(db, "SKU-FLOUR", "A-01-01")) == (4, 0)

    # The refused key is spent: correcting the quantity confirms under a new one.
    assert screen.fields["idempotency_key"] != key
    await screen.press("edit")
    await screen.press("next", quantity="4")
    await screen.scan("A-01-01")
    response = await screen.press("confirm")
    assert response.status_code == 200
    assert (await on_hand(db, "SKU-FLOUR", "A-01-03"), await on_hand(db, "SKU-FLOUR", "A-01-01")) == (0, 4)
    await assert_ledger_equals_balances(db)


async def test_putaway_goes_from_a_receiving_dock_to_storage_choosing_the_lot_there(client, db, site):
    await stock_in(db, site, "SKU-GLOVE", "QUAI-R1", 10, lot="G-7")
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/putaway")
    await screen.open()
    await screen.scan("LOC-LYS-A-01-02")
    assert screen.step == "source" and "A-01-02" in screen.problem  # not a receiving dock
    await screen.scan("LOC-LYS-QUAI-R1")
    await screen.scan("03760000000031")
    assert screen.step == "details"
    assert 'data-value="G-7"' in screen.html  # the lots in stock at the dock, to tap
    # Scanning the destination right after keying the quantity goes straight to the confirmation.
    response = await screen.scan("LOC-LYS-QUAI-E1", quantity="4", lot="G-7")
    assert response.status_code == 422 and "QUAI-E1" in screen.problem  # a dispatch dock is not storage
    await screen.scan("LOC-LYS-A-01-02", quantity="4", lot="G-7")
    assert screen.step == "confirm"
    await screen.press("confirm")
    assert await on_hand(db, "SKU-GLOVE", "QUAI-R1", "G-7") == 6
    assert await on_hand(db, "SKU-GLOVE", "A-01-02", "G-7") == 4
    assert [m.kind for m in await movements(db, "putaway")] == ["putaway"]


async def test_a_double_submit_with_the_same_key_is_recorded_once(client, db, site):
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    await screen.open()
    await screen.scan("LOC-LYS-QUAI-R1")
    await screen.scan("SKU-FLOUR")
    await screen.press("next", quantity="6")
    confirm = {**screen.fields, "action": "confirm"}

    first = await post_form(client, "/sites/LYS/receive", confirm, headers=HTMX)
    second = await post_form(client, "/sites/LYS/receive", confirm, headers=HTMX)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(await movements(db)) == 1
    assert await on_hand(db, "SKU-FLOUR", "QUAI-R1") == 6
    # Each answer hands out a fresh key for the next operation.
    assert form_fields(first.text)["idempotency_key"] != confirm["idempotency_key"]


# ---------------------------------------------------------------- counting


async def test_a_blind_count_corrects_the_difference_and_never_shows_the_expected_quantity(client, db, site):
    await stock_in(db, site, "SKU-WATER", "B-01-01", 9187)
    await stock_in(db, site, "SKU-FLOUR", "B-01-01", 5)  # not counted: counted as zero
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/count")
    await screen.open()
    await screen.scan("LOC-LYS-B-01-01")
    await screen.scan("03760000000017")
    assert screen.step == "details"
    assert screen.fields["quantity"] == ""  # nothing suggested
    await screen.press("add", quantity="9185")
    assert screen.step == "product"
    assert screen.fields["line_product"] == "SKU-WATER"
    await screen.scan("LOC-LYS-A-01-01")
    assert "B-01-01" in screen.problem  # finish this count before another location

    response = await screen.press("finish")
    assert response.status_code == 200
    assert screen.step == "location"
    assert "B-01-01" in visible_text(screen.html)

    corrections = await movements(db, "count_correction")
    assert sorted((m.quantity, m.from_location_id is not None) for m in corrections) == [(2, True), (5, True)]
    assert await on_hand(db, "SKU-WATER", "B-01-01") == 9185
    assert await on_hand(db, "SKU-FLOUR", "B-01-01") == 0
    for html in screen.pages:
        shown = visible_text(html).replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        assert "9187" not in shown  # neither as 9187 nor as 9 187
    await assert_ledger_equals_balances(db)


async def test_finishing_a_count_with_nothing_counted_asks_to_confirm_the_location_is_empty(client, db, site):
    await stock_in(db, site, "SKU-FLOUR", "A-01-02", 3)
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/count")
    await screen.open()
    await screen.scan("A-01-02")
    response = await screen.press("finish")
    assert response.status_code == 422 and "A-01-02" in screen.problem
    assert await on_hand(db, "SKU-FLOUR", "A-01-02") == 3
    assert 'value="empty"' in screen.html
    await screen.press("empty")
    assert await on_hand(db, "SKU-FLOUR", "A-01-02") == 0


async def test_a_location_with_open_picks_is_counted_only_with_a_supervisor_override(client, db, site):
    await stock_in(db, site, "SKU-WATER", "A-01-01", 10)
    async with db.transaction() as s:
        await s.execute(text("UPDATE stock_balances SET reserved = 2 WHERE on_hand = 10"))
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/count")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.scan("SKU-WATER")
    await screen.press("add", quantity="9")
    response = await screen.press("finish")
    assert response.status_code == 409
    assert "A-01-01" in screen.problem
    assert 'name="override"' not in screen.html  # an operator cannot lift it
    assert await movements(db, "count_correction") == []

    await sign_in(client, "supervisor")
    screen = ScanScreen(client, "/sites/LYS/count")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.scan("SKU-WATER")
    await screen.press("add", quantity="9")
    await screen.press("finish")
    assert 'name="override"' in screen.html
    response = await screen.press("finish", override="1")
    assert response.status_code == 200
    assert [m.quantity for m in await movements(db, "count_correction")] == [1]
    await assert_ledger_equals_balances(db)


# ---------------------------------------------------------------- adjustments and access


async def test_an_adjustment_is_for_supervisors_and_needs_a_reason(client, db, site):
    await stock_in(db, site, "SKU-FLOUR", "A-01-01", 10)
    await sign_in(client)
    assert (await client.get("/sites/LYS/adjust")).status_code == 403

    await sign_in(client, "supervisor")
    screen = ScanScreen(client, "/sites/LYS/adjust")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.scan("SKU-FLOUR")
    response = await screen.press("next", quantity="3", direction="out")
    assert response.status_code == 422 and screen.step == "details"
    assert 'aria-invalid="true"' in screen.html
    await screen.press("next", reason="other")
    assert screen.step == "details"  # "other" needs its details
    await screen.press("next", reason="damaged", note="carton écrasé")
    assert screen.step == "confirm"
    await screen.press("confirm")
    [adjustment] = await movements(db, "adjustment")
    assert (adjustment.quantity, adjustment.reason) == (3, "damaged: carton écrasé")
    assert await on_hand(db, "SKU-FLOUR", "A-01-01") == 7


async def test_an_operator_works_only_on_their_own_sites(client, db, site):
    await sign_in(client)
    assert (await client.get("/sites/LIL/receive")).status_code == 403
    refused = await post_form(client, "/sites/LIL/receive", {"scan": "LOC-LIL-A-01-01"}, headers=HTMX)
    assert refused.status_code == 403
    assert (await client.get("/sites/NOPE/count")).status_code == 404
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(StockMovement)) == 0


async def test_the_home_page_leads_to_the_flows_of_each_site_of_the_person(client, site):
    await sign_in(client)
    home = (await client.get("/")).text
    assert 'href="/sites/LYS/receive"' in home and 'href="/sites/LYS/count"' in home
    assert "/sites/LIL/" not in home and "/adjust" not in home
    await sign_in(client, "supervisor")
    home = (await client.get("/")).text
    assert 'href="/sites/LIL/adjust"' in home and 'href="/sites/LYS/move"' in home


async def test_when_the_database_stays_busy_nothing_is_recorded_and_the_same_key_tries_again(
    client, db, site, monkeypatch
):
    from app.db.session import Busy
    from app.routes.scan_flows import steps

    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    await screen.open()
    await screen.scan("QUAI-R1")
    await screen.scan("SKU-FLOUR")
    await screen.press("next", quantity="3")
    key = screen.fields["idempotency_key"]

    async def busy(*args, **kwargs):
        raise Busy()

    with monkeypatch.context() as patch:
        patch.setattr(steps, "record_stock_change", busy)
        response = await screen.press("confirm")
    assert response.status_code == 503 and "scan-error" in trigger(response)
    assert screen.step == "confirm" and screen.fields["idempotency_key"] == key
    await screen.press("confirm")
    assert await on_hand(db, "SKU-FLOUR", "QUAI-R1") == 3


async def test_scanning_a_case_barcode_counts_the_whole_case(client, db, site):
    from app.db.models import Product, ProductBarcode

    async with db.transaction() as s:
        water = await s.scalar(select(Product.id).where(Product.sku == "SKU-WATER"))
        s.add(ProductBarcode(product_id=water, code="13760000000014", kind="gtin", units=6))
    await sign_in(client)
    screen = ScanScreen(client, "/sites/LYS/receive")
    await screen.open()
    await screen.scan("LOC-LYS-QUAI-R1")
    await screen.scan("13760000000014")
    assert screen.fields["quantity"] == "6"
    await screen.scan("13760000000014")
    assert screen.fields["quantity"] == "12"
