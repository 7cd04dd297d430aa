"""Picking and shipment screens through the real routes: lists and who has them, the pick flow scan by
scan, printed documents, labels sent to a real TCP listener."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text, update

from app.asgi import create_app
from app.db.models import Destination
from app.services.labels import PrinterUnavailable, send_to_printer
from tests.helpers import post_form
from tests.integration.picking_fixtures import (
    balance,
    dispatched_day,
    list_row,
    persona_actor,
    take,
    task_row,
)
from tests.integration.stock_fixtures import assert_stock_invariants
from tests.integration.test_operations import HTMX, ScanScreen, sign_in, trigger, visible_text

GS1_YOG_L1 = "]C1" + "0103760000000024" + "17270131" + "10L1"


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


def compact(html: str) -> str:
    return " ".join(visible_text(html).split())


# ---------------------------------------------------------------- the lists


async def test_the_lists_show_who_is_picking_which_list_and_since_when(client, db, day):
    await take(db, day.yog_list, "supervisor", now=datetime.now(UTC) - timedelta(minutes=3, seconds=5))
    await sign_in(client)
    page = await client.get("/sites/LYS/picking")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    holder = re.search(r'<span class="holder">(.*?)</span>', page.text, re.S)
    assert holder and "Samir Superviseur" in holder.group(1) and re.search(r"\b3\b", holder.group(1))
    assert f"/sites/LYS/picking/{day.flour_list}/take" in page.text  # the other list is free to take
    assert "/reassign" not in page.text  # operators do not hand lists over
    assert page.headers["vary"].startswith("HX-Request")

    fragment = await client.get("/sites/LYS/picking", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="pick-lists"')
    # Redrawn when picking changes at the site (the page's live stream), and every minute regardless.
    assert "<html" not in fragment.text and 'hx-trigger="sse:picking, every 60s"' in fragment.text
    assert 'sse-connect="/sites/LYS/live?topic=picking"' in page.text


async def test_taking_a_list_leads_to_it_and_a_second_taker_is_told_who_has_it(client, app, db, day):
    await sign_in(client)
    page = await client.get("/sites/LYS/picking")
    key = re.search(rf'name="idempotency_key" value="([^"]+:take:{day.flour_list})"', page.text).group(1)
    response = await post_form(client, f"/sites/LYS/picking/{day.flour_list}/take", {"idempotency_key": key})
    assert response.status_code == 303
    assert response.headers["location"] == f"/sites/LYS/picking/{day.flour_list}"
    assert (await list_row(db, day.flour_list)).status == "taken"

    async with AsyncTestClient(app=app, base_url="https://testserver.local") as other:
        await sign_in(other, "supervisor")
        refused = await post_form(
            other, f"/sites/LYS/picking/{day.flour_list}/take", {"idempotency_key": "x"}
        )
        assert refused.status_code == 409
        assert "Olivia Opérateur" in compact(refused.text)
        assert "/reassign" in refused.text  # a supervisor may hand it to someone else
        moved = await post_form(
            other,
            f"/sites/LYS/picking/{day.flour_list}/reassign",
            {"idempotency_key": "y", "username": "samir"},
        )
        assert moved.status_code == 303
    assert (await list_row(db, day.flour_list)).taken_by == (await persona_actor(db, "supervisor"))[0].user_id


async def test_the_home_page_resumes_the_persons_own_list_and_counts_the_lists_waiting(client, db, day):
    await sign_in(client)
    home = compact((await client.get("/")).text)
    assert "Vos listes en préparation" not in home and "Listes de préparation 2 à préparer" in home
    await take(db, day.flour_list, "operator")
    await take(db, day.yog_list, "supervisor")
    page = (await client.get("/")).text
    home = compact(page)
    number = (await list_row(db, day.flour_list)).number
    resume = f"Vos listes en préparation {number} · Zone A · LYS Tâches faites : 0 sur 1 Continuer {number}"
    assert resume in home
    assert f'href="/sites/LYS/picking/{day.flour_list}"' in page
    assert f'href="/sites/LYS/picking/{day.yog_list}"' not in page  # the supervisor's, not hers
    assert "à préparer" not in home  # both lists are taken now


async def test_an_operator_cannot_reassign_nor_see_another_sites_lists(client, day):
    await sign_in(client)
    response = await post_form(
        client, f"/sites/LYS/picking/{day.flour_list}/reassign", {"username": "olivia"}
    )
    assert response.status_code == 403
    assert (await client.get("/sites/LIL/picking")).status_code == 403
    assert (await client.get("/sites/LYS/picking/999999")).status_code == 404


# ---------------------------------------------------------------- the pick flow


async def test_a_list_is_picked_scan_by_scan_with_a_buzz_for_each_wrong_scan(client, db, day):
    await sign_in(client)
    screen = ScanScreen(client, f"/sites/LYS/picking/{day.yog_list}")
    assert (await screen.open()).status_code == 200
    assert screen.step == "location"
    assert "B-01-01" in screen.html and "SKU-YOG" in screen.html and "L1" in screen.html
    assert 'inputmode="none"' in screen.html and "js/scanner.js" in screen.html

    response = await screen.scan("LOC-LYS-A-01-01")
    assert response.status_code == 422 and "scan-error" in trigger(response)
    assert "B-01-01" in screen.problem and "LOC-LYS-A-01-01" in screen.problem  # expected and scanned
    assert screen.step == "location"

    response = await screen.scan("LOC-LYS-B-01-01")
    assert (response.status_code, screen.step) == (200, "product")
    assert trigger(response)["scan-ok"]["recorded"] is False

    response = await screen.scan("03760000000017")  # the water
    assert response.status_code == 422 and "SKU-WATER" in screen.problem and "SKU-YOG" in screen.problem

    await screen.scan("SKU-YOG")  # no lot on the SKU: the lot comes next
    assert screen.step == "lot"
    response = await screen.scan("L7")
    assert response.status_code == 422 and "L7" in screen.problem and "L1" in screen.problem
    await screen.scan(GS1_YOG_L1)
    assert screen.step == "quantity" and screen.fields["quantity"] == "12"

    response = await screen.press("confirm")
    assert response.status_code == 200
    assert trigger(response) == {"scan-ok": {"recorded": True}}
    assert 'data-step="finished"' in screen.html  # its only task
    assert await balance(db, "SKU-YOG", "QUAI-E1") == (12, 0)
    assert (await list_row(db, day.yog_list)).status == "done"
    await assert_stock_invariants(db)


async def test_an_expired_lot_is_refused_on_the_screen(client, db, day):
    async with db.transaction() as s:
        await s.execute(text("UPDATE lots SET expiry = '2020-01-31' WHERE code = 'L1'"))
    await sign_in(client)
    screen = ScanScreen(client, f"/sites/LYS/picking/{day.yog_list}")
    await screen.open()
    await screen.scan("B-01-01")
    response = await screen.scan("]C1" + "0103760000000024" + "10L1")
    assert response.status_code == 422 and "L1" in screen.problem and re.search(r"2020", screen.problem)
    assert screen.step == "product"


async def test_a_quantity_below_the_task_asks_to_confirm_the_short_pick(client, db, day):
    await sign_in(client)
    screen = ScanScreen(client, f"/sites/LYS/picking/{day.flour_list}")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.scan("SKU-FLOUR")
    assert screen.step == "quantity"
    await screen.press("confirm", quantity="14")
    assert screen.step == "short"
    assert re.search(r"\b14\b.*\b20\b.*\b6\b", compact(screen.html))
    assert (await task_row(db, day.flour_task)).status == "open"  # nothing recorded yet
    await screen.press("edit")
    assert screen.step == "quantity"
    await screen.press("confirm", quantity="14")
    response = await screen.press("short")
    assert trigger(response) == {"scan-ok": {"recorded": True}}
    task = await task_row(db, day.flour_task)
    assert (task.status, task.picked, task.short) == ("short", 14, 6)
    await assert_stock_invariants(db)


async def test_nothing_at_the_location_is_a_short_pick_of_everything(client, db, day):
    await sign_in(client)
    screen = ScanScreen(client, f"/sites/LYS/picking/{day.flour_list}")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.press("empty")
    assert screen.step == "short" and screen.fields["quantity"] == "0"
    await screen.press("short")
    task = await task_row(db, day.flour_task)
    assert (task.status, task.picked, task.short) == ("short", 0, 20)
    assert await balance(db, "SKU-FLOUR", "A-01-01") == (30, 0)


async def test_a_double_tap_on_confirm_records_one_pick(client, db, day):
    await sign_in(client)
    screen = ScanScreen(client, f"/sites/LYS/picking/{day.flour_list}")
    await screen.open()
    await screen.scan("A-01-01")
    await screen.scan("SKU-FLOUR")
    confirm = {**screen.fields, "action": "confirm"}
    first = await post_form(client, f"/sites/LYS/picking/{day.flour_list}", confirm, headers=HTMX)
    second = await post_form(client, f"/sites/LYS/picking/{day.flour_list}", confirm, headers=HTMX)
    assert (first.status_code, second.status_code) == (200, 200)
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM stock_movements WHERE kind = 'pick'")) == 1


async def test_the_printed_pick_list_walks_the_path_with_barcodes(client, day):
    await sign_in(client)
    page = await client.get(f"/sites/LYS/picking/{day.flour_list}/print")
    assert page.status_code == 200
    assert page.text.count('<svg class="barcode"') == 3  # the list, its location, its product
    assert 'aria-label="LOC-LYS-A-01-01"' in page.text and 'aria-label="SKU-FLOUR"' in page.text
    assert " style=" not in page.text  # the Content-Security-Policy would refuse it
    assert "js/print.js" in page.text


# ---------------------------------------------------------------- shipments


async def order_number(db, order_id: int) -> str:
    async with db.sessions() as s:
        return (
            await s.execute(text("SELECT number FROM dispatch_orders WHERE id = :id"), {"id": order_id})
        ).scalar_one()


async def test_a_destination_with_many_lines_at_the_dock_lists_the_first_and_counts_the_rest(
    client, db, day, monkeypatch
):
    monkeypatch.setattr("app.db.queries.shipments.READY_LINES", 1)
    await picked_everything(db, day)
    await sign_in(client)
    contents = compact((await client.get("/sites/LYS/shipments")).text)
    assert "Contenu : 2 lignes" in contents and "SKU-FLOUR" in contents and "SKU-YOG" not in contents
    assert "Et 1 ligne de plus : le bon de livraison les liste toutes." in contents


async def picked_everything(db, day) -> None:
    from tests.integration.test_picking import confirm

    await confirm(db, day.flour_task, "A-01-01", "SKU-FLOUR", 20)
    await confirm(db, day.yog_task, "B-01-01", GS1_YOG_L1, 12)


async def test_a_shipment_is_closed_from_the_screen_with_its_delivery_note(client, db, day):
    async with db.transaction() as s:
        await s.execute(
            update(Destination)
            .where(Destination.id == day.destination_id)
            .values(address="12 rue des Lilas\n69003 Lyon", contact="Mme Durand")
        )
    await picked_everything(db, day)
    await sign_in(client)
    page = await client.get("/sites/LYS/shipments")
    assert "MAG-A" in page.text and re.search(r"\b32\b", compact(page.text))
    # What ships, line by line, for the dock to check against the goods: the flour in 2 packs of 10.
    contents = compact(page.text[page.text.index('class="ship-contents"') :])
    number = await order_number(db, day.order_id)
    assert f"{number} SKU-FLOUR Farine T55 1 kg 20 2 colis" in contents
    assert f"{number} SKU-YOG Yaourt nature x4 12 1 colis" in contents
    # 2 packs of flour, 1 of yogurt: what the parcels' count is checked against.
    assert "3 colis complets préparés : une étiquette par colis." in compact(page.text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    response = await post_form(
        client, "/sites/LYS/shipments", {"destination": "MAG-A", "parcels": "2", "idempotency_key": key}
    )
    assert response.status_code == 303
    shipment_page = await client.get(response.headers["location"])
    assert "EXP-" in shipment_page.text and "/note" in shipment_page.text

    note = await client.get(response.headers["location"] + "/note")
    text_of_note = compact(note.text)
    assert "12 rue des Lilas" in text_of_note and "69003 Lyon" in text_of_note  # decrypted for the note
    assert "Mme Durand" in text_of_note and "L1" in text_of_note
    assert '<svg class="barcode"' in note.text and " style=" not in note.text

    again = await post_form(
        client, "/sites/LYS/shipments", {"destination": "MAG-A", "parcels": "2", "idempotency_key": key}
    )
    assert again.headers["location"] == response.headers["location"]  # a double tap: the same shipment
    nothing = await post_form(
        client, "/sites/LYS/shipments", {"destination": "MAG-A", "parcels": "1", "idempotency_key": "new"}
    )
    assert nothing.status_code == 409 and "MAG-A" in compact(nothing.text)


async def test_labels_download_as_zpl_one_per_parcel(client, db, day):
    await picked_everything(db, day)
    await sign_in(client)
    response = await post_form(
        client, "/sites/LYS/shipments", {"destination": "MAG-A", "parcels": "3", "idempotency_key": "k"}
    )
    labels = await client.get(response.headers["location"] + "/labels.zpl")
    assert labels.status_code == 200
    assert (
        "attachment" in labels.headers["content-disposition"]
        and ".zpl" in labels.headers["content-disposition"]
    )
    zpl = labels.text
    assert zpl.count("^XA") == 3 and zpl.count("^BC") == 3
    assert re.search(r"\b1/3\b", zpl) and re.search(r"\b3/3\b", zpl) and "MAG-A" in zpl


async def test_labels_go_to_the_network_printer_and_a_missing_one_is_said(db, db_urls, test_settings, day):
    received = bytearray()
    done = asyncio.Event()

    async def printer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.read())
        writer.close()
        done.set()

    server = await asyncio.start_server(printer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await picked_everything(db, day)
    settings = replace(
        test_settings, dispatch=replace(test_settings.dispatch, label_printer=f"127.0.0.1:{port}")
    )
    try:
        async with AsyncTestClient(
            app=create_app(settings, database_url=db_urls.libpq), base_url="https://testserver.local"
        ) as client:
            await sign_in(client)
            closed = await post_form(
                client,
                "/sites/LYS/shipments",
                {"destination": "MAG-A", "parcels": "2", "idempotency_key": "s"},
            )
            detail = closed.headers["location"]
            shown = await client.get(detail)
            assert f"127.0.0.1:{port}" in shown.text
            sent = await post_form(client, detail + "/labels", {"idempotency_key": "print-1"}, headers=HTMX)
            assert sent.status_code == 200
            await asyncio.wait_for(done.wait(), 5)
            assert sent.text.lstrip().startswith('<section id="labels"')
            assert bytes(received).count(b"^XA") == 2 and b"EXP-" in received
            # A double tap sends nothing more.
            await post_form(client, detail + "/labels", {"idempotency_key": "print-1"}, headers=HTMX)
            await asyncio.sleep(0.2)
            assert bytes(received).count(b"^XA") == 2
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unreachable_or_missing_printer_gets_a_clear_refusal(client, db, day):
    with pytest.raises(PrinterUnavailable) as refused:
        await send_to_printer(None, b"^XA^XZ")
    assert "LABEL_PRINTER" in refused.value.message
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nobody listens on that port any more
    with pytest.raises(PrinterUnavailable) as refused:
        await send_to_printer(("127.0.0.1", port), b"^XA^XZ", wait=2)
    assert refused.value.facts["printer"] == f"127.0.0.1:{port}"

    await picked_everything(db, day)
    await sign_in(client)
    closed = await post_form(
        client,
        "/sites/LYS/shipments",
        {"destination": "MAG-A", "parcels": "1", "idempotency_key": uuid.uuid4().hex},
    )
    response = await post_form(
        client, closed.headers["location"] + "/labels", {"idempotency_key": "p"}, headers=HTMX
    )
    assert response.status_code == 503 and "LABEL_PRINTER" in compact(response.text)
