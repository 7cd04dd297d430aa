"""Stock pages: the one-box search, product and location pages, their history and the CSV export."""

import csv
import io
import random
import uuid
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
from sqlalchemy import insert, text

from app.db.folding import ACCENTED, LIGATURES, fold_sql, fold_text
from app.db.models import Product
from app.db.queries.stock_search import SearchTerms
from app.domain.ledger import MovementKind as K
from app.routes import stock as stock_routes
from app.services.stock import Actor, StockChange, record_stock_change
from tests.helpers import login
from tests.integration.stock_fixtures import make_catalog

DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 10:00 in Lyon
DAY2 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
DAY3 = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 23:30 on the 22nd in Lyon, the 22nd in UTC too
DAY4 = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # already the 24th in Lyon


class Rows(HTMLParser):
    """The text of each body row's cells, of every table in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag in ("td", "th") and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows(html: str) -> list[list[str]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


def skus(html: str) -> list[str]:
    return [row[0] for row in rows(html)]


async def change(db, actor, when, **fields):
    change = StockChange(**fields)
    return await record_stock_change(db, change, actor=actor, idempotency_key=uuid.uuid4().hex, now=when)


@pytest.fixture
async def stock(db):
    """Water in three places of LYS (4 reserved), yoghurts in two lots, gloves; flour only at LIL."""
    catalog = await make_catalog(db)
    async with db.sessions() as s:
        olivia = await s.scalar(text("SELECT id FROM users WHERE username = 'olivia'"))
    actor = Actor(user_id=olivia, scope="olivia")
    lys, lil = catalog.site_id, catalog.other_site_id
    await change(
        db, actor, DAY1, kind=K.RECEIPT, site_id=lys, product="SKU-WATER", quantity=24, target="QUAI-R1"
    )
    await change(
        db,
        actor,
        DAY2,
        kind=K.PUTAWAY,
        site_id=lys,
        product="SKU-WATER",
        quantity=18,
        source="QUAI-R1",
        target="A-01-01",
        document="PA-0001",
    )
    await change(
        db,
        actor,
        DAY3,
        kind=K.TRANSFER,
        site_id=lys,
        product="SKU-WATER",
        quantity=5,
        source="A-01-01",
        target="A-01-02",
    )
    await change(
        db,
        actor,
        DAY1,
        kind=K.RECEIPT,
        site_id=lys,
        product="SKU-YOG",
        quantity=12,
        target="A-01-03",
        lot="L2611A",
        expiry=date(2099, 12, 31),
    )
    await change(
        db,
        actor,
        DAY1,
        kind=K.RECEIPT,
        site_id=lys,
        product="SKU-YOG",
        quantity=3,
        target="A-01-03",
        lot="L2001Z",
        expiry=date(2020, 1, 31),
    )
    await change(
        db,
        actor,
        DAY1,
        kind=K.RECEIPT,
        site_id=lys,
        product="SKU-GLOVE",
        quantity=40,
        target="B-01-01",
        lot="GL-77",
    )
    await change(
        db,
        actor,
        DAY4,
        kind=K.ADJUSTMENT,
        site_id=lys,
        product="SKU-GLOVE",
        quantity=3,
        source="B-01-01",
        lot="GL-77",
        reason='=HYPERLINK("http://evil")',
    )
    await change(
        db, actor, DAY1, kind=K.RECEIPT, site_id=lil, product="SKU-FLOUR", quantity=50, target="A-01-01"
    )
    async with db.transaction() as s:
        await s.execute(
            text("""UPDATE stock_balances SET reserved = 4 WHERE location_id =
                    (SELECT id FROM locations WHERE site_id = :site AND code = 'A-01-01')"""),
            {"site": lys},
        )
    return catalog


@pytest.fixture
async def olivia(client, personas, stock):
    """The operator of LYS, reading English (words on screen stay stable when the French catalog grows)."""
    persona = personas["operator"]
    client.headers["Accept-Language"] = "en"
    assert (await login(client, persona.username, persona.password)).status_code == 303
    return client


async def search(client, q, **params):
    response = await client.get("/sites/LYS/stock", params={"q": q, **params})
    assert response.status_code == 200
    return response


# ---------------------------------------------------------------- search


async def test_a_sku_finds_the_product_with_its_stock_at_the_site(olivia):
    response = await search(olivia, "SKU-WATER")
    assert rows(response.text) == [["SKU-WATER", "Eau minérale 1,5 L", "24", "4", "20", "3"]]


async def test_a_scanned_gtin_13_finds_the_product_stored_as_gtin_14(olivia):
    assert skus((await search(olivia, "3760000000017")).text) == ["SKU-WATER"]


async def test_a_gtin_typed_on_an_azerty_layout_is_repaired(olivia):
    mangled = "3760000000017".translate(str.maketrans("1234567890", "&é\"'(-è_çà"))
    assert skus((await search(olivia, mangled)).text) == ["SKU-WATER"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("eau", ["SKU-WATER"]),
        ("MINÉRALE", ["SKU-WATER"]),
        ("minerale 1,5", ["SKU-WATER"]),  # every word, in any case and without accents
        ("yaourt", ["SKU-YOG"]),
        ("sku-", ["SKU-GLOVE", "SKU-WATER", "SKU-YOG", "SKU-FLOUR"]),  # what is in stock here first
        ("100%", []),  # LIKE wildcards are taken literally
    ],
)
async def test_a_name_fragment_finds_products_whatever_the_case_and_accents(olivia, q, expected):
    assert skus((await search(olivia, q)).text) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("oeufs", ["SKU-EGG"]),
        ("ŒUFS", ["SKU-EGG"]),
        ("creme fraiche", ["SKU-CREAM"]),
        ("Crème", ["SKU-CREAM"]),
    ],
)
async def test_accents_and_ligatures_fold_both_ways(olivia, db, q, expected):
    async with db.transaction() as s:
        await s.execute(
            insert(Product).values(
                [
                    {"sku": "SKU-EGG", "name": "Œufs frais x12"},
                    {"sku": "SKU-CREAM", "name": "CRÈME FRAÎCHE épaisse"},
                ]
            )
        )
    assert skus((await search(olivia, q)).text) == expected


FOLDED_ALPHABET = "abcdeinouyzlrstABCEOZ -%_'0123456789" + ACCENTED + "".join(lig for lig, _ in LIGATURES)


async def test_the_database_folds_names_as_the_search_folds_words(db):
    """The words typed are folded in Python, the names by PostgreSQL (`fold_sql`): both must agree.

    Every character on its own, then 500 names drawn from them (a fixed seed, so a failure repeats).
    """
    draw = random.Random(20261129)
    names = [
        *FOLDED_ALPHABET,
        *("".join(draw.choices(FOLDED_ALPHABET, k=draw.randint(1, 30))) for _ in range(500)),
    ]
    async with db.reads() as session:
        folded = await session.execute(
            text(
                f"SELECT {fold_sql('n')} FROM unnest(CAST(:names AS text[]))"
                " WITH ORDINALITY AS t(n, i) ORDER BY i"
            ),
            {"names": names},
        )
        assert [row[0] for row in folded] == [fold_text(name) for name in names]


async def test_a_product_keeps_its_name_folded_as_written(db):
    """The stored column (the migration's expression) folds a name as the search folds the words."""
    name = "Œufs FRAÎCHEUR Crème brûlée Æther 100%_x"
    async with db.transaction() as session:
        await session.execute(insert(Product).values(sku="SKU-FOLD", name=name))
        stored = await session.scalar(text("SELECT search_name FROM products WHERE sku = 'SKU-FOLD'"))
        assert stored == fold_text(name) == "oeufs fraicheur creme brulee aether 100%_x"
        await session.execute(text("UPDATE products SET name = 'Ça' WHERE sku = 'SKU-FOLD'"))
        assert await session.scalar(text("SELECT search_name FROM products WHERE sku = 'SKU-FOLD'")) == "ca"


def test_a_search_takes_the_first_ten_words():
    """A statement per word count, two parameters a word: a pasted paragraph must not make thousands."""
    assert SearchTerms.read(" ".join(f"w{n}" for n in range(50))).words == tuple(f"w{n}" for n in range(10))


async def test_a_pasted_paragraph_still_finds_by_its_first_words(olivia):
    paragraph = " ".join(["eau", "minérale"] * 1_000)
    assert skus((await search(olivia, paragraph)).text) == ["SKU-WATER"]


async def test_a_product_without_stock_here_shows_zeros(olivia):
    # SKU-FLOUR has 50 at Lille, none at Lyon.
    assert rows((await search(olivia, "SKU-FLOUR")).text) == [
        ["SKU-FLOUR", "Farine T55 1 kg", "0", "0", "0", "0"]
    ]


async def test_a_lot_code_finds_its_product(olivia):
    table = rows((await search(olivia, "L2611A")).text)
    assert [r[0] for r in table] == ["SKU-YOG"]
    assert "Lot L2611A" in table[0][1]
    assert table[0][2:] == ["15", "0", "15", "1"]


@pytest.mark.parametrize("q", ["A-01-03", "a-01-03", "LOC-LYS-A-01-03"])
async def test_a_location_code_or_barcode_finds_what_it_holds_and_links_to_it(olivia, q):
    response = await search(olivia, q)
    assert skus(response.text) == ["SKU-YOG"]
    assert 'href="/sites/LYS/locations/A-01-03"' in response.text


async def test_the_empty_box_lists_what_the_site_holds(olivia):
    assert skus((await search(olivia, "")).text) == ["SKU-GLOVE", "SKU-WATER", "SKU-YOG"]


async def test_an_htmx_search_returns_only_the_results_block(olivia):
    response = await olivia.get("/sites/LYS/stock", params={"q": "eau"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<div id="stock-results"')
    assert "HX-Request" in response.headers["vary"]
    assert skus(response.text) == ["SKU-WATER"]


async def test_the_full_page_has_the_search_box_and_the_results(olivia):
    response = await search(olivia, "eau")
    assert "<html" in response.text
    assert 'id="stock-q"' in response.text
    assert 'value="eau"' in response.text
    assert 'id="stock-results"' in response.text


async def test_results_are_paginated(olivia, monkeypatch):
    monkeypatch.setattr(stock_routes, "PAGE_SIZE", 3)
    first = await search(olivia, "sku")
    second = await search(olivia, "sku", page_no=2)
    assert skus(first.text) == ["SKU-GLOVE", "SKU-WATER", "SKU-YOG"]
    assert skus(second.text) == ["SKU-FLOUR"]
    assert "Page 2 of 2" in second.text
    assert "4 products found" in second.text
    beyond = await search(olivia, "sku", page_no=9)
    assert skus(beyond.text) == []
    assert "4 products found" in beyond.text


# ---------------------------------------------------------------- product page


async def test_french_screens_format_numbers_and_dates_the_french_way(olivia, db, stock):
    await change(
        db,
        Actor(None, "test"),
        DAY1,
        kind=K.RECEIPT,
        site_id=stock.site_id,
        product="SKU-FLOUR",
        quantity=1234,
        target="B-01-01",
    )
    french = {"Accept-Language": "fr"}
    found = await olivia.get("/sites/LYS/stock", params={"q": "SKU-FLOUR"}, headers=french)
    assert rows(found.text)[0][2:] == ["1 234", "0", "1 234", "1"]
    assert ">1\u202f234<" in found.text  # a narrow no-break space between thousands
    page = await olivia.get("/sites/LYS/products/SKU-FLOUR", headers=french)
    assert rows(page.text)[-1][0] == "20/11/2026 10:00"


async def test_the_product_page_shows_facts_balances_in_pick_order_and_history(olivia):
    response = await olivia.get("/sites/LYS/products/SKU-WATER")
    assert response.status_code == 200
    page = response.text
    assert "03760000000017" in page
    table = rows(page)
    balances, history = table[:3], table[3:]
    assert balances == [
        ["QUAI-R1 Receiving dock", "6", "0", "6"],
        ["A-01-01", "13", "4", "9"],
        ["A-01-02", "5", "0", "5"],
    ]
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in history] == [
        ("Transfer", "A-01-01", "A-01-02", "5", "olivia"),
        ("Putaway", "QUAI-R1", "A-01-01", "18", "olivia"),
        ("Receipt", "—", "QUAI-R1", "+24", "olivia"),
    ]
    assert history[0][0] == "2026-11-22 23:30"  # in the site's time zone
    assert history[1][6] == "PA-0001"


async def test_times_are_shown_on_the_site_clock(olivia, db):
    async with db.transaction() as s:
        await s.execute(text("UPDATE sites SET timezone = 'America/Montreal' WHERE code = 'LYS'"))
    page = await olivia.get("/sites/LYS/products/SKU-WATER")
    assert rows(page.text)[3][0] == "2026-11-22 17:30"
    export = read_csv(await olivia.get("/sites/LYS/movements.csv", params={"product": "SKU-WATER"}))
    assert export[1][0] == "2026-11-22 17:30:00"


async def test_expired_lots_are_flagged(olivia):
    page = (await olivia.get("/sites/LYS/products/SKU-YOG")).text
    balances = rows(page)[:2]
    assert [(r[1], r[2]) for r in balances] == [
        ("L2001Z", "Jan 31, 2020 Expired"),
        ("L2611A", "Dec 31, 2099"),
    ]


async def test_the_history_filters_by_kind_and_by_days_of_the_site(olivia):
    url = "/sites/LYS/products/SKU-WATER"
    by_kind = rows((await olivia.get(url, params={"kind": "putaway"})).text)[3:]
    assert [r[1] for r in by_kind] == ["Putaway"]
    by_days = rows((await olivia.get(url, params={"since": "2026-11-21", "until": "2026-11-22"})).text)[3:]
    assert [r[1] for r in by_days] == ["Transfer", "Putaway"]
    nothing = await olivia.get(url, params={"since": "2026-11-23"})
    assert "No movement matches." in nothing.text


async def test_the_history_fragment_is_returned_alone_to_htmx(olivia):
    response = await olivia.get(
        "/sites/LYS/products/SKU-WATER", params={"kind": "receipt"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<div id="history"')
    assert [r[1] for r in rows(response.text)] == ["Receipt"]
    assert "/sites/LYS/movements.csv?product=SKU-WATER&amp;kind=receipt" in response.text


async def test_the_history_is_paginated(olivia, monkeypatch):
    monkeypatch.setattr(stock_routes, "HISTORY_SIZE", 2)
    first = await olivia.get("/sites/LYS/products/SKU-WATER")
    assert [r[1] for r in rows(first.text)[3:]] == ["Transfer", "Putaway"]
    assert "page_no=2" in first.text
    second = await olivia.get("/sites/LYS/products/SKU-WATER", params={"page_no": 2})
    assert [r[1] for r in rows(second.text)[3:]] == ["Receipt"]
    assert "page_no=3" not in second.text


async def test_an_unknown_sku_is_a_404_page(olivia):
    response = await olivia.get("/sites/LYS/products/SKU-NOPE")
    assert response.status_code == 404
    assert "Unknown product: SKU-NOPE." in response.text


# ---------------------------------------------------------------- location page


async def test_the_location_page_shows_facts_balances_and_signed_history(olivia):
    response = await olivia.get("/sites/LYS/locations/A-01-01")
    assert response.status_code == 200
    assert "LOC-LYS-A-01-01" in response.text
    table = rows(response.text)
    assert table[0] == ["SKU-WATER", "Eau minérale 1,5 L", "—", "—", "13", "4", "9"]
    assert [(r[1], r[2], r[6]) for r in table[1:]] == [
        ("Transfer", "SKU-WATER Eau minérale 1,5 L", "−5"),
        ("Putaway", "SKU-WATER Eau minérale 1,5 L", "+18"),
    ]


async def test_an_unknown_location_is_a_404_page(olivia):
    response = await olivia.get("/sites/LYS/locations/Z-99")
    assert response.status_code == 404


# ---------------------------------------------------------------- CSV export


def read_csv(response) -> list[list[str]]:
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


async def test_the_csv_export_has_a_bom_semicolons_a_header_and_one_row_per_movement(olivia):
    response = await olivia.get(
        "/sites/LYS/movements.csv", params={"product": "SKU-WATER"}, headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = read_csv(response)
    assert len(table[0]) == 12
    # French: day/month/year, in the site's time zone; movement words as on the screen.
    assert {(r[2], r[3]) for r in table[1:]} == {("SKU-WATER", "Eau minérale 1,5 L")}
    assert [[r[0], *r[4:]] for r in table[1:]] == [
        ["22/11/2026 23:30:00", "", "", "A-01-01", "A-01-02", "5", "", "", "olivia"],
        ["21/11/2026 10:00:00", "", "", "QUAI-R1", "A-01-01", "18", "", "PA-0001", "olivia"],
        ["20/11/2026 10:00:00", "", "", "", "QUAI-R1", "24", "", "", "olivia"],
    ]
    english = read_csv(await olivia.get("/sites/LYS/movements.csv", params={"product": "SKU-WATER"}))
    assert english[0] == [
        "Date",
        "Type",
        "SKU",
        "Designation",
        "Lot",
        "Expiry date",
        "From",
        "To",
        "Quantity",
        "Reason",
        "Document",
        "User",
    ]
    assert [r[1] for r in english[1:]] == ["Transfer", "Putaway", "Receipt"]
    assert english[1][0] == "2026-11-22 23:30:00"


async def test_the_csv_export_of_a_location_with_filters(olivia):
    response = await olivia.get(
        "/sites/LYS/movements.csv",
        params={"location": "B-01-01", "kind": "adjustment", "since": "2026-11-24"},
    )
    table = read_csv(response)
    assert len(table) == 2
    assert table[1][0] == "2026-11-24 00:30:00"
    assert table[1][8] == "-3"
    assert table[1][9] == '\'=HYPERLINK("http://evil")'  # never a formula in a spreadsheet


async def test_the_csv_export_of_the_whole_site_leaves_other_sites_out(olivia):
    table = read_csv(await olivia.get("/sites/LYS/movements.csv"))
    assert len(table) == 1 + 7
    assert {r[2] for r in table[1:]} == {"SKU-WATER", "SKU-YOG", "SKU-GLOVE"}


async def test_the_csv_export_of_an_unknown_product_is_a_404(olivia):
    assert (await olivia.get("/sites/LYS/movements.csv", params={"product": "NOPE"})).status_code == 404


# ---------------------------------------------------------------- access


async def test_an_operator_of_lyon_may_not_see_lille(olivia):
    assert (await olivia.get("/sites/LIL/stock")).status_code == 403
    assert (await olivia.get("/sites/LIL/products/SKU-FLOUR")).status_code == 403
    assert (await olivia.get("/sites/LIL/movements.csv")).status_code == 403


async def test_the_stock_link_leads_to_the_first_site_of_the_user(olivia):
    response = await olivia.get("/stock", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sites/LYS/stock"
    page = (await olivia.get("/")).text
    assert 'href="/stock"' in page


async def test_a_supervisor_of_two_sites_can_switch_between_them(client, personas, stock):
    persona = personas["supervisor"]
    await login(client, persona.username, persona.password)
    page = (await client.get("/sites/LIL/stock")).text
    assert 'href="/sites/LYS/stock"' in page
    assert skus(page) == ["SKU-FLOUR"]
