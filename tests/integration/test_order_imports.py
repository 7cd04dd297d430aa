"""Order files: checked whole, written whole or nothing, twice changes nothing, large ones by the worker."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.db.models import DispatchOrder, DispatchOrderLine
from app.services.imports import Uploader, start_import
from tests.integration.order_fixtures import make_destinations
from tests.integration.stock_fixtures import make_catalog
from tests.integration.test_imports import (
    EVERY_SITE,
    NOW,
    _run_requested,
    batch,
    csv_file,
    messages,
    xlsx_file,
)

ORDERS = """\
Commande;Entrepôt;Destinataire;Article;Quantité;Échéance;Priorité;Libérer
ERP-100;LYS;MAG-002;SKU-WATER;24;26/11/2026;;oui
ERP-100;LYS;MAG-002;03760000000048;10;26/11/2026;;oui
ERP-101;LYS;CLI-001;SKU-GLOVE;5;27/11/2026 14:30;1;non
"""


@pytest.fixture
async def site(db):
    catalog = await make_catalog(db)
    await make_destinations(db)
    return catalog.site_id


async def import_orders(db, content, uploader=EVERY_SITE, name="orders.csv"):
    return await batch(db, await start_import(db, "orders", name, content, uploader=uploader, now=NOW))


async def written(db):
    async with db.sessions() as s:
        return (
            await s.scalar(select(func.count()).select_from(DispatchOrder)),
            await s.scalar(select(func.count()).select_from(DispatchOrderLine)),
        )


async def test_rows_sharing_a_number_make_one_order_with_french_dates_and_the_tier_as_priority(db, site):
    done = await import_orders(db, csv_file(ORDERS))
    assert (done.status, done.counts) == ("done", {"rows": 3, "created": 2, "updated": 0, "unchanged": 0})
    async with db.sessions() as s:
        orders = {o.number: o for o in await s.scalars(select(DispatchOrder).order_by(DispatchOrder.number))}
    first, second = orders["ERP-100"], orders["ERP-101"]
    assert (first.state, first.units, first.priority, first.source) == ("released", 34, 2, "import")
    assert first.due_at == datetime(2026, 11, 26, 22, 59, tzinfo=UTC)  # the end of the day in Lyon
    assert (second.state, second.priority) == ("draft", 1)
    assert second.due_at == datetime(2026, 11, 27, 13, 30, tzinfo=UTC)
    assert await written(db) == (2, 3)


async def test_importing_the_same_order_file_again_changes_nothing(db, site):
    await import_orders(db, csv_file(ORDERS))
    again = await import_orders(db, csv_file(ORDERS))
    assert (again.status, again.counts) == ("done", {"rows": 3, "created": 0, "updated": 0, "unchanged": 2})
    assert await written(db) == (2, 3)


async def test_an_order_already_there_with_other_content_is_a_row_error_and_nothing_is_written(db, site):
    await import_orders(db, csv_file(ORDERS))
    changed = ORDERS.replace("SKU-GLOVE;5", "SKU-GLOVE;6") + "ERP-102;LYS;MAG-001;SKU-WATER;1;28/11/2026;;\n"
    refused = await import_orders(db, csv_file(changed))
    assert refused.status == "failed"
    assert messages(refused) == [(4, "Commande", "Order ERP-101 already exists with other content.")]
    assert await written(db) == (2, 3)


HEADER = "order;site;destination;sku;quantity;due\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "order;site;destinataire;article;qte;due;colour\nA;LYS;MAG-001;SKU-WATER;1;26/11/2026;red\n",
            [
                (
                    None,
                    "colour",
                    "Unknown column colour; the columns are: order, site, destination, sku, "
                    "quantity, due, priority, release.",
                )
            ],
        ),
        (
            "order;site;sku;quantity\nA;LYS;SKU-WATER;1\n",
            [(None, "destination", "Missing column destination."), (None, "due", "Missing column due.")],
        ),
        (
            HEADER + "A;LYS;MAG-001;SKU-WATER;1,5;26/11/2026\nB;LYS;MAG-001;SKU-WATER;abc;26/11/2026\n"
            "C;LYS;MAG-001;SKU-WATER;0;26/11/2026\nD;LYS;MAG-001;SKU-WATER;2;31/02/2026\n",
            [
                (2, "quantity", "1,5 is not a whole number: write it without decimals (e.g. 1234)."),
                (3, "quantity", "abc is not a number."),
                (4, "quantity", "The quantity is a whole number from 1 to 1000000."),
                (5, "due", "31/02/2026 is not a date: write 2026-12-31 or 31/12/2026."),
            ],
        ),
        (
            HEADER + "A;LYS;MAG-001;NOPE;1;26/11/2026\nB;LYS;NOBODY;SKU-WATER;1;26/11/2026\n"
            "C;XXX;MAG-001;SKU-WATER;1;26/11/2026\nD;LYS;AGE-009;SKU-WATER;1;26/11/2026\n",
            [
                (2, "sku", "Unknown product: NOPE."),
                (3, "destination", "Unknown destination: NOBODY."),
                (4, "site", "Unknown site: XXX."),
                (5, "destination", "Destination AGE-009 is not in use."),
            ],
        ),
        (
            HEADER + "A;LYS;MAG-001;SKU-WATER;1;26/11/2026\nA;LYS;MAG-001;SKU-WATER;2;26/11/2026\n"
            "B;LYS;MAG-001;SKU-WATER;1;26/11/2026\nB;LYS;MAG-001;03760000000017;2;26/11/2026\n",
            [
                (3, "sku", "SKU-WATER is already ordered in row 2 of order A."),
                (5, "sku", "SKU-WATER is already ordered in row 4 of order B."),
            ],
        ),
        (
            HEADER + "A;LYS;MAG-001;SKU-WATER;1;26/11/2026\nA;LYS;MAG-002;SKU-FLOUR;2;26/11/2026\n",
            [(3, "destination", "Order A: each row must give the same destination as row 2.")],
        ),
        (
            HEADER + "A B;LYS;MAG-001;SKU-WATER;1;26/11/2026\n",
            [(2, "order", "An order number has 1 to 28 letters, digits or . _ - characters.")],
        ),
    ],
)
async def test_an_order_file_with_errors_writes_nothing_and_names_each_row_and_column(
    db, site, text, expected
):
    refused = await import_orders(db, csv_file(text))
    assert refused.status == "failed"
    assert messages(refused) == expected
    assert await written(db) == (0, 0)


async def test_a_binary_file_is_refused_before_anything_is_stored(db, site):
    with pytest.raises(Exception, match="neither a CSV nor an XLSX"):
        await import_orders(db, b"\x00\x01\x02binary\x00" * 10)
    assert await written(db) == (0, 0)


async def test_orders_of_a_site_the_uploader_does_not_work_at_are_refused(db, site):
    lyon_only = Uploader(None, "olivia", None, frozenset({site}))
    refused = await import_orders(db, csv_file(HEADER + "A;LIL;MAG-001;SKU-WATER;1;26/11/2026\n"), lyon_only)
    assert messages(refused) == [(2, "site", "You do not work at site LIL.")]


async def test_an_xlsx_order_file_takes_date_cells_and_date_and_time_cells(db, site):
    content = xlsx_file(
        [
            ["order", "site", "destination", "sku", "quantity", "due", "release"],
            ["X-1", "LYS", "MAG-001", "SKU-WATER", 12, datetime(2026, 12, 1), "yes"],
            ["X-2", "LYS", "MAG-002", "SKU-FLOUR", 3.0, datetime(2026, 12, 1, 9, 15), None],
        ]
    )
    await import_orders(db, content, name="orders.xlsx")  # its row count unknown: the worker imports it
    assert (await _run_requested(db))["created"] == 2
    async with db.sessions() as s:
        due = dict((await s.execute(select(DispatchOrder.number, DispatchOrder.due_at))).all())
    assert due == {
        "X-1": datetime(2026, 12, 1, 22, 59, tzinfo=UTC),
        "X-2": datetime(2026, 12, 1, 8, 15, tzinfo=UTC),
    }


async def test_a_large_order_file_is_imported_by_the_worker(db, site):
    rows = [HEADER.strip()] + [
        f"BIG-{n:05d};LYS;MAG-00{1 + n % 2};SKU-WATER;{1 + n % 7};30/11/2026" for n in range(5_200)
    ]
    queued = await import_orders(db, csv_file("\n".join(rows)))
    assert queued.status == "queued" and await written(db) == (0, 0)
    assert await _run_requested(db) == {"rows": 5_200, "created": 5_200, "updated": 0, "unchanged": 0}
    assert await written(db) == (5_200, 5_200)
