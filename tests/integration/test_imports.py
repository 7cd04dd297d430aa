"""Imports: a file is written whole or not at all, twice changes nothing, big files run in the worker."""

import asyncio
import io
import re
import time
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from app.db.models import (
    ImportBatch,
    JobRequest,
    Location,
    Lot,
    Product,
    ProductBarcode,
    StockBalance,
    StockMovement,
)
from app.services.errors import Invalid
from app.services.imports import JOB, Uploader, start_import
from app.services.jobs import JOB_BODIES, run_request
from tests.conftest import PERSONAS
from tests.helpers import csrf_token, login
from tests.integration.stock_fixtures import assert_ledger_equals_balances, make_catalog

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
EVERY_SITE = Uploader(None, "test", None, None)
WRITTEN = (Product, ProductBarcode, Location, Lot, StockBalance, StockMovement)

PRODUCTS = """\
Article;Désignation;PCB;EAN;Suivi lot;Suivi DLC
SKU-MILK;Lait demi-écrémé 1 L;6;3760000000055;non;non
SKU-CREAM;Crème fraîche 20 cl;12;3760000000062|3760000000079;oui;oui
SKU-BOX;Carton 40x30;1;;non;non
"""
LOCATIONS = """\
site,code,kind,zone,pick_seq
LYS,R-01,réception,R,1
LYS,C-01-01,stockage,C,10
LYS,C-01-02,,C,20
"""
STOCK = """\
entrepôt;emplacement;article;lot;dlc;quantité
LYS;C-01-01;SKU-MILK;;;120
LYS;C-01-02;SKU-CREAM;L-2611;31/12/2026;48
LYS;LOC-LYS-C-01-02;SKU-CREAM;L-2612;2027-01-15;24
LYS;R-01;SKU-BOX;;;1 500
"""


def csv_file(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def xlsx_file(rows: list[list[object]]) -> bytes:
    book = Workbook(write_only=True)  # writes no dimension: the row count is unknown until read
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def counts(db) -> dict[str, int]:
    async with db.sessions() as s:
        return {m.__tablename__: await s.scalar(select(func.count()).select_from(m)) for m in WRITTEN}


async def batch(db, batch_id) -> ImportBatch:
    async with db.sessions() as s:
        return await s.get(ImportBatch, batch_id)


async def import_file(db, kind, content, uploader=EVERY_SITE, name="file.csv") -> ImportBatch:
    return await batch(db, await start_import(db, kind, name, content, uploader=uploader, now=NOW))


async def import_all(db) -> list[ImportBatch]:
    return [
        await import_file(db, "products", csv_file(PRODUCTS)),
        await import_file(db, "locations", csv_file(LOCATIONS)),
        await import_file(db, "stock", csv_file(STOCK)),
    ]


def messages(found: ImportBatch) -> list[tuple[int | None, str, str]]:
    return [(e["row"], e["column"], e["message"].format(**e["facts"])) for e in found.errors]


async def test_products_locations_and_opening_stock_are_imported_and_the_ledger_agrees(db):
    products, locations, stock = await import_all(db)
    assert (products.status, products.counts["created"]) == ("done", 3)
    assert (locations.status, locations.counts["created"]) == ("done", 3)
    assert (stock.status, stock.counts) == ("done", {"rows": 4, "movements": 4, "unchanged": 0})
    assert stock.content is None and stock.processed_rows == stock.total_rows == 4
    async with db.sessions() as s:
        cream = await s.scalar(select(Product).where(Product.sku == "SKU-CREAM"))
        assert (cream.pack_size, cream.lot_tracked, cream.expiry_tracked) == (12, True, True)
        lots = dict((await s.execute(select(Lot.code, Lot.expiry))).all())
        assert lots == {"L-2611": date(2026, 12, 31), "L-2612": date(2027, 1, 15)}
        moves = (
            await s.execute(select(StockMovement.kind, StockMovement.reason, StockMovement.document))
        ).all()
        assert set(moves) == {("adjustment", "opening stock", f"import-{stock.id}")}
        assert sorted((await s.scalars(select(StockBalance.on_hand))).all()) == [24, 48, 120, 1500]
    await assert_ledger_equals_balances(db)


async def test_what_dispatch_runs_may_do_with_products_comes_from_their_file(db):
    await make_catalog(db)
    good = (
        "article;désignation;pcb;arrondi_colis;vente_unite;stock_securite\n"
        "SKU-TEA;Thé vert x20;12;oui;non;24\n"
        "SKU-SALT;Sel fin 1 kg;10;;oui;\n"
    )
    found = await import_file(db, "products", csv_file(good + "SKU-OIL;Huile 1 L;6;non;peut-être;-3\n"))
    assert found.status == "failed"
    assert messages(found) == [  # each named by the file's own header
        (4, "vente_unite", "peut-être is not yes or no (oui/non, 1/0, x or blank)."),
        (4, "stock_securite", "-3 is out of range: from 0 to 1000000000."),
    ]
    fixed = await import_file(db, "products", csv_file(good))
    assert fixed.status == "done", fixed.errors
    async with db.sessions() as s:
        rows = (
            await s.execute(
                select(Product.sku, Product.round_up_packs, Product.allow_eaches, Product.holdback_units)
                .where(Product.sku.in_(["SKU-TEA", "SKU-SALT"]))
                .order_by(Product.sku)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("SKU-SALT", False, True, 0), ("SKU-TEA", True, False, 24)]


async def test_new_products_with_gtins_are_counted_as_created_only(db):
    products = await import_file(db, "products", csv_file(PRODUCTS))
    assert products.counts == {"rows": 3, "created": 3, "updated": 0, "unchanged": 0}


async def test_importing_the_same_files_again_changes_nothing(db):
    await import_all(db)
    before = await counts(db)
    products, locations, stock = await import_all(db)
    assert products.counts == {"rows": 3, "created": 0, "updated": 0, "unchanged": 3}
    assert locations.counts == {"rows": 3, "created": 0, "updated": 0, "unchanged": 3}
    assert stock.counts == {"rows": 4, "movements": 0, "unchanged": 4}
    assert await counts(db) == before


async def test_a_new_opening_quantity_is_reached_with_one_adjustment(db):
    await import_all(db)
    changed = STOCK.replace("C-01-01;SKU-MILK;;;120", "C-01-01;SKU-MILK;;;100")
    stock = await import_file(db, "stock", csv_file(changed))
    assert stock.counts["movements"] == 1
    async with db.sessions() as s:
        last = await s.scalar(select(StockMovement).order_by(StockMovement.id.desc()).limit(1))
    assert (last.quantity, last.to_location_id, last.from_location_id is not None) == (20, None, True)
    await assert_ledger_equals_balances(db)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (
            "products",
            "sku;name;price\nSKU-NEW;Nouveau;3\n",
            [
                (
                    None,
                    "price",
                    "Unknown column price; the columns are: sku, name, unit, pack_size, "
                    "lot_tracked, expiry_tracked, round_up_packs, allow_eaches, holdback_units, gtins.",
                )
            ],
        ),
        ("locations", "site;zone\nLYS;A\n", [(None, "code", "Missing column code.")]),
        (
            "stock",
            "site;location;sku;quantity\nLYS;A-01-01;SKU-WATER;12\nLYS;A-01-02;SKU-WATER;12,5\n",
            [(3, "quantity", "12,5 is not a whole number: write it without decimals (e.g. 1234).")],
        ),
        (
            "stock",
            "site;location;sku;quantity\nLYS;A-01-01;SKU-WATER;12\nLYS;A-01-02;SKU-GHOST;5\nXXX;A-01-01;SKU-WATER;1\n",
            [(3, "sku", "Unknown product: SKU-GHOST."), (4, "site", "Unknown site: XXX.")],
        ),
        (
            "stock",
            "site;location;sku;lot;quantity\nLYS;A-01-01;SKU-GLOVE;G1;5\nLYS;LOC-LYS-A-01-01;SKU-GLOVE;G1;6\n",
            [(3, "location", "The same site, location, SKU and lot already appear in row 2.")],
        ),
        (
            "products",
            "sku;name\nSKU-NEW;Nouveau\nSKU-NEW;Nouveau bis\n",
            [(3, "sku", "SKU SKU-NEW already appears in row 2.")],
        ),
        (
            "products",
            "sku;name;gtins\nSKU-NEW;Nouveau;3760000000017\n",
            [(2, "gtins", "GTIN 03760000000017 already belongs to SKU-WATER.")],
        ),
        (
            "stock",
            "site;location;sku;lot;expiry;quantity\nLYS;A-01-01;SKU-YOG;;;5\nLYS;A-01-02;SKU-YOG;Y1;;5\n"
            "LYS;A-01-03;SKU-FLOUR;F1;;5\nLYS;NOWHERE;SKU-FLOUR;;;5\n",
            [
                (2, "lot", "Product SKU-YOG is tracked by lot: scan or enter the lot."),
                (3, "expiry", "Lot Y1 needs its expiry date."),
                (4, "lot", "Product SKU-FLOUR is not tracked by lot."),
                (5, "location", "Unknown location at this site: NOWHERE."),
            ],
        ),
    ],
    ids=[
        "unknown-column",
        "missing-column",
        "decimal",
        "unknown-sku-and-site",
        "same-key",
        "same-sku",
        "gtin-taken",
        "lots",
    ],
)
async def test_a_file_with_errors_writes_nothing_and_names_each_row_and_column(db, kind, text, expected):
    await make_catalog(db)
    before = await counts(db)
    found = await import_file(db, kind, csv_file(text))
    assert found.status == "failed"
    assert messages(found) == expected
    assert found.counts["errors"] == len(expected)
    assert await counts(db) == before


@pytest.mark.parametrize(
    "content",
    [b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 40, b"PK\x03\x04 not really a workbook", b""],
    ids=["program", "fake-xlsx", "empty"],
)
async def test_a_file_that_is_not_a_table_is_refused_before_anything_is_stored(db, content):
    before = await counts(db)
    with pytest.raises(Invalid):
        await start_import(db, "products", "setup.csv", content, uploader=EVERY_SITE, now=NOW)
    assert await counts(db) == before
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ImportBatch)) == 0


async def test_a_supervisor_imports_only_at_their_sites(db):
    catalog = await make_catalog(db)
    lyon_only = Uploader(None, "samir", None, frozenset({catalog.site_id}))
    text = "site;location;sku;quantity\nLYS;A-01-01;SKU-WATER;6\nLIL;A-01-01;SKU-WATER;6\n"
    found = await import_file(db, "stock", csv_file(text), uploader=lyon_only)
    assert messages(found) == [(3, "site", "You do not work at site LIL.")]


async def test_a_refusal_while_writing_undoes_the_whole_file(db):
    """Stock reserved for picking cannot be taken by an opening quantity: the file is refused whole."""
    await make_catalog(db)
    await import_file(db, "stock", csv_file("site;location;sku;quantity\nLYS;A-01-01;SKU-WATER;10\n"))
    async with db.transaction() as s:
        await s.execute(StockBalance.__table__.update().values(reserved=8))
    before = await counts(db)
    text = "site;location;sku;quantity\nLYS;A-01-02;SKU-FLOUR;30\nLYS;A-01-01;SKU-WATER;5\n"
    found = await import_file(db, "stock", csv_file(text))
    assert messages(found) == [(None, "", "Location A-01-01: only 2 in stock, 5 requested.")]
    assert await counts(db) == before


# --- large files: the worker imports them, the page follows its progress ----------------------


async def _run_observed(db, request_id, batch_id):
    """Run the request as the worker does, watching the batch's progress from another connection."""
    seen = set()
    job = asyncio.create_task(run_request(db, request_id, JOB_BODIES, worker_id="test", now=NOW))
    while not job.done():
        async with db.sessions() as s:
            row = (
                await s.execute(
                    select(ImportBatch.status, ImportBatch.processed_rows).where(ImportBatch.id == batch_id)
                )
            ).one()
        seen.add(tuple(row))
        await asyncio.sleep(0.02)
    return await job, seen


async def test_a_huge_file_is_imported_by_the_worker_with_its_progress_shown(db):
    rows = [["sku", "name", "pack_size", "gtins"]]
    rows += [[f"BULK-{n:05d}", f"Article en vrac n° {n}", 1 + n % 24, ""] for n in range(20_000)]
    content = xlsx_file(rows)
    batch_id = await start_import(db, "products", "catalogue.xlsx", content, uploader=EVERY_SITE, now=NOW)
    queued = await batch(db, batch_id)
    assert (queued.status, queued.processed_rows) == ("queued", 0)
    async with db.sessions() as s:
        request = await s.scalar(select(JobRequest).where(JobRequest.function == JOB))
    assert request.kwargs == {"batch_id": batch_id, "sites": None}

    started = time.perf_counter()
    result, seen = await _run_observed(db, request.id, batch_id)
    elapsed = time.perf_counter() - started
    print(f"\n20,000 products imported by the job in {elapsed:.1f} s")

    assert result == {"rows": 20_000, "created": 20_000, "updated": 0, "unchanged": 0}
    assert any(status == "running" and 0 < done < 20_000 for status, done in seen), seen
    done = await batch(db, batch_id)
    assert (done.status, done.total_rows, done.processed_rows, done.content) == ("done", 20_000, 20_000, None)
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Product)) == 20_000
    assert (await run_request(db, request.id, JOB_BODIES, worker_id="again", now=NOW)) == {"skipped": 1}


async def test_a_large_file_with_one_bad_row_at_the_end_writes_nothing(db):
    lines = ["sku;name"] + [f"BULK-{n:05d};Article {n}" for n in range(6_000)] + ["BULK-00042;Encore"]
    batch_id = await start_import(
        db, "products", "big.csv", csv_file("\n".join(lines)), uploader=EVERY_SITE, now=NOW
    )
    async with db.sessions() as s:
        request_id = await s.scalar(select(JobRequest.id).where(JobRequest.function == JOB))
    async with (
        db.transaction() as session
    ):  # the registered body, inside a transaction, as run_request calls it
        result = await JOB_BODIES[JOB](
            session, {"batch_id": batch_id, "sites": None, "request_id": request_id}
        )
    assert result == {"rows": 6_001, "errors": 1}
    assert messages(await batch(db, batch_id)) == [
        (6_002, "sku", "SKU BULK-00042 already appears in row 44.")
    ]
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Product)) == 0


async def _run_requested(db) -> dict[str, int]:
    async with db.sessions() as s:
        request_id = await s.scalar(select(JobRequest.id).where(JobRequest.function == JOB))
    assert request_id is not None, "the file was not handed to the worker"
    return await run_request(db, request_id, JOB_BODIES, worker_id="test", now=NOW)


async def test_a_large_opening_stock_goes_to_the_worker_and_keeps_the_ledger_exact(db):
    await make_catalog(db)
    places = "\n".join(["site;code"] + [f"LYS;S-{n:04d}" for n in range(1_500)])
    assert (await import_file(db, "locations", csv_file(places))).status == "done"
    stock = "\n".join(
        ["site;location;sku;quantity"] + [f"LYS;S-{n:04d};SKU-WATER;{n % 7}" for n in range(1_500)]
    )
    batch_id = await start_import(db, "stock", "stock.csv", csv_file(stock), uploader=EVERY_SITE, now=NOW)
    assert (await batch(db, batch_id)).status == "queued"
    # quantity n % 7: the 215 lines with 0 need no movement, the 1,285 others one adjustment each
    assert await _run_requested(db) == {"rows": 1_500, "movements": 1_285, "unchanged": 215}
    await assert_ledger_equals_balances(db)


async def test_an_opening_stock_file_too_large_for_one_transaction_is_refused(db):
    stock = "\n".join(["site;location;sku;quantity"] + [f"LYS;S-{n:05d};SKU-WATER;1" for n in range(5_001)])
    batch_id = await start_import(db, "stock", "stock.csv", csv_file(stock), uploader=EVERY_SITE, now=NOW)
    await _run_requested(db)
    assert messages(await batch(db, batch_id)) == [
        (None, "", "An opening stock file holds at most 5000 lines: split it by site or zone.")
    ]


# --- the screens -------------------------------------------------------------------------------


async def sign_in_supervisor(client):
    supervisor = PERSONAS["supervisor"]
    assert (await login(client, supervisor.username, supervisor.password)).status_code == 303


async def upload(client, kind, name, content):
    token = await csrf_token(client)
    return await client.post(
        "/imports/",
        data={"kind": kind, "_csrf_token": token},
        files={"file": (name, content, "application/octet-stream")},
        headers={"Accept-Language": "en"},
        follow_redirects=False,
    )


async def test_a_supervisor_uploads_a_file_and_sees_what_was_imported(client, db):
    await sign_in_supervisor(client)
    page = await client.get("/imports/")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    response = await upload(client, "products", "produits.csv", csv_file(PRODUCTS))
    assert response.status_code == 303
    assert re.fullmatch(r"/imports/\d+", response.headers["location"])
    result = await client.get(response.headers["location"], headers={"Accept-Language": "en"})
    assert "Imported: 3 rows, 3 created" in result.text
    assert "hx-trigger" not in result.text.split('id="import-batch"')[1]  # finished: nothing polls
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Product)) == 3


async def test_the_error_table_and_the_report_name_rows_and_columns(client, db):
    await make_catalog(db)
    await sign_in_supervisor(client)
    text = "site;location;sku;quantity\nLYS;A-01-01;SKU-GHOST;=1+1\n"
    response = await upload(client, "stock", "stock.csv", csv_file(text))
    page = await client.get(response.headers["location"], headers={"Accept-Language": "en"})
    assert "Nothing was written: the file has 1 error." in page.text
    assert "=1+1 is not a number." in page.text
    report = await client.get(response.headers["location"] + "/errors", headers={"Accept-Language": "en"})
    assert report.headers["content-type"].startswith("text/csv")
    assert report.text.splitlines() == ["\ufeffRow,Column,Error", "2,quantity,'=1+1 is not a number."]


async def test_a_file_that_is_not_csv_or_xlsx_is_refused_on_the_page(client, db):
    await sign_in_supervisor(client)
    response = await upload(client, "products", "photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    assert response.status_code == 422
    assert "This file is neither a CSV nor an XLSX file." in response.text
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ImportBatch)) == 0


async def test_a_running_import_polls_until_it_is_finished(client, db):
    await sign_in_supervisor(client)
    async with db.transaction() as s:
        running = ImportBatch(
            kind="products", filename="x.csv", status="running", total_rows=10_000, processed_rows=4_000
        )
        s.add(running)
        await s.flush()
    fragment = await client.get(f"/imports/{running.id}/progress", headers={"HX-Request": "true"})
    assert f'hx-get="/imports/{running.id}/progress"' in fragment.text
    assert 'value="4000"' in fragment.text


async def test_templates_name_the_expected_columns(client):
    await sign_in_supervisor(client)
    template = await client.get("/imports/template/stock", headers={"Accept-Language": "fr"})
    assert template.text == "\ufeffsite;location;sku;lot;expiry;quantity\r\n"
    assert (await client.get("/imports/template/nothing")).status_code == 404
