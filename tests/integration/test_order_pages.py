"""Order and destination screens: lists as you type, the order page, the forms, in French and English."""

import re
import uuid
from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from app.db.models import AccessEvent, Destination, DispatchOrder
from app.services.orders import OrderData, OrderLineData, create_order
from tests.conftest import PERSONAS
from tests.helpers import login, post_form
from tests.integration.order_fixtures import (
    NOW,
    actor,
    make_destinations,
    mark_picked,
    put_in_stock,
    reserve_line,
)
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def orders(db):
    """Three orders at LYS (one late, one released, one draft) and one at LIL."""
    catalog = await make_catalog(db)
    await make_destinations(db)
    who = await actor(db)
    made = {}
    for name, site, destination, due, release in (
        ("late", catalog.site_id, "MAG-001", NOW - timedelta(days=400), True),
        ("released", catalog.site_id, "MAG-002", NOW + timedelta(days=400), True),
        ("draft", catalog.site_id, "CLI-001", NOW + timedelta(days=401), False),
        ("lille", catalog.other_site_id, "MAG-002", NOW + timedelta(days=400), False),
    ):
        data = OrderData(site, destination, due, (OrderLineData("SKU-WATER", 12),), release=release)
        _status, answer = await create_order(db, data, actor=who, idempotency_key=uuid.uuid4().hex, now=NOW)
        made[name] = answer
    made["site_id"] = catalog.site_id
    return made


async def as_(client, who):
    p = PERSONAS[who]
    assert (await login(client, p.username, p.password)).status_code == 303


def hidden_key(html):
    return re.search(r'name="idempotency_key" value="([^"]+)"', html)[1]


async def test_the_order_list_shows_the_sites_orders_with_the_late_one_first_and_marked(client, orders):
    await as_(client, "operator")
    page = await client.get("/sites/LYS/orders", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    html = page.text
    assert "<html" in html and "Commandes" in html
    numbers = re.findall(r">(CMD-\d{8}-\d{4})<", html)
    assert numbers == [orders["late"]["number"], orders["released"]["number"], orders["draft"]["number"]]
    assert orders["lille"]["number"] not in html
    assert html.count('class="row-late"') == 1 and "En retard" in html
    assert "Nouvelle commande" not in html  # operators do not create orders


async def test_the_order_list_answers_a_search_with_the_fragment_alone(client, orders):
    await as_(client, "supervisor")
    fragment = await client.get("/sites/LYS/orders", params={"q": "bocuse"}, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and fragment.text.lstrip().startswith('<div id="order-results"')
    assert re.findall(r">(CMD-\d{8}-\d{4})<", fragment.text) == [orders["draft"]["number"]]
    assert "HX-Request" in fragment.headers["vary"]
    drafts = await client.get("/sites/LYS/orders", params={"state": "draft"}, headers=HTMX)
    assert re.findall(r">(CMD-\d{8}-\d{4})<", drafts.text) == [orders["draft"]["number"]]


async def test_a_site_not_yours_is_forbidden_and_an_order_of_another_site_is_not_found(client, orders):
    await as_(client, "operator")  # LYS only
    assert (await client.get("/sites/LIL/orders")).status_code == 403
    assert (await client.get(f"/sites/LYS/orders/{orders['lille']['id']}")).status_code == 404
    assert (await client.get("/sites/LYS/orders/new")).status_code == 403
    assert (await client.get("/destinations")).status_code == 403


async def test_the_order_page_shows_each_line_and_supervisors_may_release_a_draft(client, db, orders):
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['draft']['id']}"
    page = await client.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Still needed" in page.text and "SKU-WATER" in page.text and "Release" in page.text
    released = await post_form(client, f"{url}/release", {"idempotency_key": hidden_key(page.text)})
    assert (released.status_code, released.headers["location"]) == (303, url)
    again = await post_form(client, f"{url}/release", {"idempotency_key": hidden_key(page.text)})
    assert again.status_code == 303  # a double tap: the first answer again, nothing more
    async with db.sessions() as s:
        state = await s.scalar(select(DispatchOrder.state).where(DispatchOrder.id == orders["draft"]["id"]))
    assert state == "released"


async def test_a_refused_cancel_says_why_in_french_and_offers_a_fresh_key(client, db, orders):
    await put_in_stock(db, orders["site_id"], "SKU-WATER", 20)
    await reserve_line(db, orders["released"]["id"], 1, 12, taken_by="olivia")
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['released']['id']}"
    refused = await post_form(
        client, f"{url}/cancel", {"idempotency_key": "k-1"}, headers={**HTMX, "Accept-Language": "fr"}
    )
    assert refused.status_code == 409
    assert "en cours de préparation" in refused.text
    assert "<html" not in refused.text and "CMD-20261125-0002" in refused.text  # the order's block alone
    await assert_stock_invariants(db)


async def test_cancelling_from_the_page_releases_the_reservation_and_redirects_the_htmx_way(
    client, db, orders
):
    await put_in_stock(db, orders["site_id"], "SKU-WATER", 20)
    await reserve_line(db, orders["released"]["id"], 1, 12)
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['released']['id']}"
    done = await post_form(client, f"{url}/cancel", {"idempotency_key": uuid.uuid4().hex}, headers=HTMX)
    assert (done.status_code, done.headers["hx-redirect"]) == (200, url)
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 0
    await assert_stock_invariants(db)


async def test_a_new_order_is_created_from_the_form_and_adding_a_line_keeps_what_was_typed(
    client, db, orders
):
    await as_(client, "supervisor")
    form = await client.get("/sites/LYS/orders/new")
    assert form.status_code == 200 and 'name="line_product"' in form.text
    typed = {
        "idempotency_key": hidden_key(form.text),
        "destination": "MAG-002",
        "due_date": "2026-12-01",
        "due_time": "",
        "priority": "",
        "line_product": ["SKU-WATER", "03760000000048", ""],
        "line_quantity": ["24", "10", ""],
    }
    more = await post_form(client, "/sites/LYS/orders/new", {**typed, "action": "add-line"}, headers=HTMX)
    assert more.status_code == 200 and "<html" not in more.text
    assert more.text.count('name="line_product"') == 4 and 'value="03760000000048"' in more.text
    created = await post_form(client, "/sites/LYS/orders/new", {**typed, "action": "release"})
    assert created.status_code == 303
    async with db.sessions() as s:
        order = await s.scalar(
            select(DispatchOrder).where(DispatchOrder.id == int(created.headers["location"].split("/")[-1]))
        )
    assert (order.state, order.units, order.priority, order.source) == ("released", 34, 2, "screen")
    # 2026-12-01 without a time: the end of that day in Lyon (UTC+1 in winter).
    assert order.due_at.isoformat() == "2026-12-01T22:59:00+00:00"


async def test_a_new_order_with_an_unknown_product_comes_back_in_french_naming_the_line(client, db, orders):
    await as_(client, "supervisor")
    form = await client.get("/sites/LYS/orders/new")
    response = await post_form(
        client,
        "/sites/LYS/orders/new",
        {
            "idempotency_key": hidden_key(form.text),
            "destination": "MAG-002",
            "due_date": "2026-12-01",
            "line_product": ["SKU-WATER", "NOPE"],
            "line_quantity": ["1", "2"],
            "action": "create",
        },
        headers={"Accept-Language": "fr"},
    )
    assert response.status_code == 422
    assert "Ligne 2 : article inconnu NOPE." in response.text
    assert hidden_key(response.text) != hidden_key(form.text)
    assert 'value="NOPE"' in response.text
    # The form shown again says what each line names: line 1 the water, line 2 nothing in use.
    assert "✓" in response.text and "Aucun article en service ne correspond à « NOPE »." in response.text
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchOrder)) == 4


async def test_destinations_are_created_listed_and_their_secrets_shown_only_on_the_journaled_edit_page(
    client, db
):
    await as_(client, "supervisor")
    form = await client.get("/destinations/new")
    created = await post_form(
        client,
        "/destinations/",
        {
            "idempotency_key": hidden_key(form.text),
            "code": "mag-042",
            "name": "Magasin Bron",
            "kind": "store",
            "tier": "1",
            "min_units": "12",
            "max_units": "600",
            "quota_percent": "12,5",
            "address": "12 rue de la République\n69500 Bron",
            "contact": "Mme Durand 04 78 00 00 00",
            "is_active": "1",
        },
    )
    assert (created.status_code, created.headers["location"]) == (303, "/destinations?saved=MAG-042")
    listing = await client.get("/destinations/?saved=MAG-042", headers={"Accept-Language": "fr"})
    assert "MAG-042" in listing.text and "Magasin Bron" in listing.text and "République" not in listing.text
    edit = await client.get("/destinations/MAG-042")
    assert "République" in edit.text and "Mme Durand" in edit.text
    async with db.sessions() as s:
        stored = await s.scalar(text("SELECT address FROM destinations WHERE code = 'MAG-042'"))
        seen = (
            await s.execute(
                select(AccessEvent.actor_name, AccessEvent.detail).where(
                    AccessEvent.event == "destination.sensitive_viewed"
                )
            )
        ).all()
        journal = " ".join(str(d) for (d,) in (await s.execute(select(AccessEvent.detail))).all())
        quota = await s.scalar(select(Destination.quota_percent).where(Destination.code == "MAG-042"))
    assert "République" not in stored  # encrypted at rest
    assert seen == [("samir", {"code": "MAG-042"})]
    assert "République" not in journal and "Durand" not in journal
    assert str(quota) == "12.50"


async def test_a_destination_form_with_max_below_min_comes_back_in_french(client, db):
    await as_(client, "admin")
    form = await client.get("/destinations/new")
    response = await post_form(
        client,
        "/destinations/",
        {
            "idempotency_key": hidden_key(form.text),
            "code": "MAG-043",
            "name": "Magasin Vénissieux",
            "kind": "store",
            "tier": "2",
            "min_units": "100",
            "max_units": "50",
        },
        headers={"Accept-Language": "fr"},
    )
    assert response.status_code == 422
    assert "Le maximum (50) est inférieur au minimum (100)." in response.text
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Destination)) == 0


async def test_the_destination_list_answers_a_search_with_the_fragment_alone(client, db):
    await make_destinations(db)
    await as_(client, "supervisor")
    fragment = await client.get("/destinations", params={"q": "bocuse"}, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "CLI-001" in fragment.text and "MAG-001" not in fragment.text


async def test_supervisors_find_orders_and_destinations_from_the_menu_and_their_home(client, orders):
    await as_(client, "supervisor")
    home = await client.get("/")
    for url in ("/orders", "/destinations", "/sites/LYS/orders", "/sites/LYS/orders/new"):
        assert f'href="{url}' in home.text
    assert (await client.get("/orders", follow_redirects=False)).headers["location"] == "/sites/LIL/orders"
    # Each site's next step: LYS has two released orders waiting for a run, LIL only a draft.
    french = (await client.get("/", headers={"Accept-Language": "fr"})).text
    next_step = r'<a class="btn btn-primary" href="/sites/LYS/dispatch">\s*Répartir 2 commandes lancées'
    assert re.search(next_step, french)
    assert '<a class="btn btn-quiet" href="/sites/LIL/dispatch">Répartitions</a>' in french
    assert re.search(r'href="/sites/LYS/orders\?state=released"[^>]*>2</a>', french)
    assert re.search(r'href="/sites/LIL/orders\?state=draft"[^>]*>1</a>', french)
    assert 'href="/sites/LIL/orders?state=released"' not in french  # no link to an empty list
    await as_(client, "operator")
    operator = (await client.get("/")).text
    assert "/dispatch" not in operator and 'href="/sites/LYS/orders?state=released"' in operator


async def test_a_new_orders_product_field_says_what_it_names_or_offers_what_it_may_mean(client, db, orders):
    await put_in_stock(db, orders["site_id"], "SKU-WATER", 30)
    async with db.transaction() as s:
        await s.execute(text("UPDATE products SET is_active = false WHERE sku = 'SKU-GLOVE'"))
    await as_(client, "supervisor")

    async def lookup(typed, line=2):
        answer = await client.get(
            "/sites/LYS/orders/new/product",
            params={"line": line, "line_product": typed},
            headers={**HTMX, "Accept-Language": "fr"},
        )
        assert answer.status_code == 200 and "<html" not in answer.text
        return answer.text

    # The SKU or a barcode, as the order will read it: the product and its stock here.
    found = await lookup("SKU-WATER")
    assert "✓" in found and "Eau minérale 1,5 L" in found and "Disponible ici : 30" in found
    assert "colis de 6" in found and "data-fill" not in found
    assert "Farine T55 1 kg" in await lookup("03760000000048")
    # Words of the name (accents aside), or a SKU in the wrong case: choices that put their SKU in the field.
    choices = await lookup("eau MINERALE", line=3)
    assert "✓" not in choices and "Articles correspondants" in choices
    offered = re.findall(r'data-fill="(l-product-\d+)" data-value="([^"]+)"', choices)
    assert offered == [("l-product-3", "SKU-WATER")]
    assert re.findall(r'data-value="([^"]+)"', await lookup("sku-yog")) == ["SKU-YOG"]
    assert len(re.findall(r'data-value="SKU-', await lookup("SKU"))) == 3  # the three in use, not the gloves
    # A product out of use is no choice: the order would refuse it.
    for typed in ("SKU-GLOVE", "gants nitrile"):
        assert f"Aucun article en service ne correspond à « {typed} »." in await lookup(typed)
    assert (await lookup("   ")).strip() == ""

    lookup_url = "/sites/LYS/orders/new/product"
    assert (await client.get(lookup_url, params={"line_product": "SKU"})).status_code == 400
    assert (await client.get(lookup_url, params={"line": 0})).status_code == 400
    await as_(client, "operator")
    assert (await client.get(lookup_url, params={"line": 1})).status_code == 403


async def test_a_form_posted_with_more_lines_than_an_order_may_have_looks_up_only_those(
    client, orders, monkeypatch
):
    monkeypatch.setattr("app.routes.orders.MAX_LINES", 2)
    await as_(client, "supervisor")
    form = await client.get("/sites/LYS/orders/new")
    typed = {"idempotency_key": hidden_key(form.text), "destination": "MAG-002", "due_date": "2026-12-01"}
    lines = {"line_product": ["SKU-WATER"] * 4, "line_quantity": ["1"] * 4, "action": "add-line"}
    more = await post_form(client, "/sites/LYS/orders/new", {**typed, **lines}, headers=HTMX)
    assert more.status_code == 200 and more.text.count('name="line_product"') == 5
    assert more.text.count("✓") == 2  # the first two lines; the others are not looked up


def form_fields(page):
    """The edit form as the browser would send it back: every input's value, the chosen destination."""
    values = dict(re.findall(r'<input[^>]* name="(destination|due_date|due_time|priority|version)"[^>]*'
                             r' value="([^"]*)"', page))  # fmt: skip
    chosen = re.search(r'<option value="([^"]+)" selected>', page)
    return {
        **values,
        "destination": chosen[1] if chosen else "",
        "idempotency_key": hidden_key(page),
        "line_product": re.findall(r'name="line_product" type="text" value="([^"]*)"', page),
        "line_quantity": re.findall(
            r'name="line_quantity" type="text" inputmode="numeric" value="([^"]*)"', page
        ),
    }


async def test_a_draft_is_edited_from_its_page_and_the_form_starts_from_the_order(client, db, orders):
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['draft']['id']}"
    page = await client.get(url, headers={"Accept-Language": "fr"})
    assert f'href="{url}/edit"' in page.text and "Modifier la commande" in page.text
    form = await client.get(f"{url}/edit", headers={"Accept-Language": "fr"})
    assert form.status_code == 200
    assert f"Modifier la commande {orders['draft']['number']}" in form.text
    fields = form_fields(form.text)
    # The order as it stands (due 401 days on, at 10:00 in Lyon), and one blank line to add a product.
    assert (fields["destination"], fields["due_date"], fields["due_time"], fields["priority"]) == (
        "CLI-001",
        (NOW + timedelta(days=401)).date().isoformat(),
        "10:00",
        "3",
    )
    assert (fields["line_product"], fields["line_quantity"]) == (["SKU-WATER", ""], ["12", ""])
    fields |= {
        "line_product": ["SKU-WATER", "SKU-FLOUR"],
        "line_quantity": ["18", "20"],
        "priority": "1",
        "due_time": "",
    }
    saved = await post_form(client, f"{url}/edit", {**fields, "action": "save"})
    assert (saved.status_code, saved.headers["location"]) == (303, url)
    async with db.sessions() as s:
        order = await s.scalar(select(DispatchOrder).where(DispatchOrder.id == orders["draft"]["id"]))
    assert (order.state, order.units, order.priority) == ("draft", 38, 1)
    # No time given: the end of that day, which the form shows again as no time.
    assert order.due_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") == "23:59"
    reopened = form_fields((await client.get(f"{url}/edit")).text)
    assert (reopened["due_time"], reopened["line_product"]) == ("", ["SKU-WATER", "SKU-FLOUR", ""])
    again = await post_form(client, f"{url}/edit", {**fields, "action": "save"})
    assert again.status_code == 303  # a double tap: the first answer, nothing more
    async with db.sessions() as s:
        events = await s.scalar(select(func.count()).where(AccessEvent.event == "order.changed"))
    assert events == 1


async def test_an_edit_over_someone_elses_comes_back_keeping_what_was_typed_and_a_second_save_wins(
    client, db, orders
):
    await as_(client, "supervisor")
    released = orders["released"]["id"]
    url = f"/sites/LYS/orders/{released}/edit"
    mine = form_fields((await client.get(url)).text)
    theirs = form_fields((await client.get(url)).text)
    theirs |= {"line_quantity": ["30", ""]}
    assert (await post_form(client, url, {**theirs, "action": "save"})).status_code == 303
    mine |= {"line_quantity": ["6", ""]}
    refused = await post_form(client, url, {**mine, "action": "save"}, headers={"Accept-Language": "fr"})
    assert refused.status_code == 409
    assert (
        "La commande CMD-20261125-0002 a été modifiée par quelqu'un d'autre depuis que vous l'avez lue. "
        "Enregistrez à nouveau pour remplacer ses modifications par les vôtres, ou quittez sans enregistrer "
        "pour les voir." in unescape(refused.text)
    )
    assert form_fields(refused.text)["line_quantity"][:2] == ["6", ""]  # what was typed, kept
    assert form_fields(refused.text)["version"] != mine["version"]  # the version now seen
    async with db.sessions() as s:
        units = await s.scalar(
            select(DispatchOrder.units).where(DispatchOrder.id == orders["released"]["id"])
        )
    assert units == 30
    second = await post_form(client, url, {**form_fields(refused.text), "action": "save"})
    assert second.status_code == 303
    async with db.sessions() as s:
        units = await s.scalar(
            select(DispatchOrder.units).where(DispatchOrder.id == orders["released"]["id"])
        )
    assert units == 6


async def test_an_order_stock_was_reserved_for_offers_no_edit_and_a_stale_link_says_why(client, db, orders):
    await put_in_stock(db, orders["site_id"], "SKU-WATER", 20)
    await reserve_line(db, orders["released"]["id"], 1, 12)
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['released']['id']}"
    assert f'href="{url}/edit"' not in (await client.get(url)).text
    stale = await client.get(f"{url}/edit", headers={"Accept-Language": "fr"})
    assert stale.status_code == 409
    assert "ne peut plus être modifiée : du stock lui est déjà réservé" in stale.text
    assert 'name="line_product"' not in stale.text  # the order's page, not the form


async def test_operators_neither_see_nor_open_the_edit_form(client, orders):
    await as_(client, "operator")
    url = f"/sites/LYS/orders/{orders['draft']['id']}"
    assert "/edit" not in (await client.get(url)).text
    assert (await client.get(f"{url}/edit")).status_code == 403
    assert (await post_form(client, f"{url}/edit", {"action": "save"})).status_code == 403


async def test_a_line_is_taken_out_of_the_form_keeping_the_others_and_nothing_is_saved(client, db, orders):
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['draft']['id']}/edit"
    fields = form_fields((await client.get(url)).text)
    fields |= {"line_product": ["SKU-WATER", "SKU-FLOUR", "SKU-GLOVE"], "line_quantity": ["12", "20", "5"]}
    fewer = await post_form(client, url, {**fields, "action": "remove-line-2"}, headers=HTMX)
    assert fewer.status_code == 200 and "<html" not in fewer.text
    assert form_fields(fewer.text)["line_product"] == ["SKU-WATER", "SKU-GLOVE"]
    assert form_fields(fewer.text)["line_quantity"] == ["12", "5"]
    assert "Retirer la ligne 2" in fewer.text and "Retirer la ligne 3" not in fewer.text
    stale = await post_form(client, url, {**fields, "action": "remove-line-9"}, headers=HTMX)
    assert form_fields(stale.text)["line_product"] == ["SKU-WATER", "SKU-FLOUR", "SKU-GLOVE"]
    last = await post_form(
        client, "/sites/LYS/orders/new", {**fields, "line_product": ["SKU-WATER"], "line_quantity": ["1"],
                                          "action": "remove-line-1"}, headers=HTMX,
    )  # fmt: skip
    assert form_fields(last.text)["line_product"] == [""]  # the last line taken out leaves a blank one
    async with db.sessions() as s:
        units = await s.scalar(select(DispatchOrder.units).where(DispatchOrder.id == orders["draft"]["id"]))
        count = await s.scalar(select(func.count()).select_from(DispatchOrder))
    assert (units, count) == (12, 4)  # neither the draft nor a new order was touched


async def test_ticked_drafts_are_released_at_once_from_the_list(client, db, orders):
    await as_(client, "supervisor")
    listing = await client.get("/sites/LYS/orders", params={"state": "draft"})
    assert "Lancer les brouillons cochés" in listing.text and "1 brouillon sur cette page." in listing.text
    form = {"idempotency_key": hidden_key(listing.text), "q": "", "state": "draft"}
    ticked = [str(orders["draft"]["id"]), str(orders["released"]["id"])]  # the second is not a draft
    done = await post_form(client, "/sites/LYS/orders/release", {**form, "order": ticked})
    assert done.status_code == 303
    assert done.headers["location"] == "/sites/LYS/orders?state=draft&released=1&left=1"
    shown = " ".join(unescape((await client.get(done.headers["location"])).text).split())
    assert "1 commande lancée : la prochaine répartition la servira." in shown
    assert "1 n'était plus un brouillon et reste telle quelle." in shown
    async with db.sessions() as s:
        states = dict((await s.execute(select(DispatchOrder.number, DispatchOrder.state))).all())
        journaled = await s.scalar(select(func.count()).where(AccessEvent.event == "order.released"))
    assert states[orders["draft"]["number"]] == "released" and journaled == 1
    again = await post_form(client, "/sites/LYS/orders/release", {**form, "order": ticked})
    assert again.headers["location"] == done.headers["location"]  # a double tap: the first answer
    lille = await post_form(
        client,
        "/sites/LYS/orders/release",
        {**form, "idempotency_key": "k-2", "order": [str(orders["lille"]["id"])]},
    )
    assert lille.headers["location"] == "/sites/LYS/orders?state=draft&left=1"  # another site's: left alone
    none = await post_form(client, "/sites/LYS/orders/release", {**form, "idempotency_key": "k-3"})
    assert none.status_code == 422 and "Cochez les brouillons à lancer." in unescape(none.text)
    await as_(client, "operator")
    assert "Lancer les brouillons" not in (await client.get("/sites/LYS/orders")).text
    assert (
        await post_form(client, "/sites/LYS/orders/release", {**form, "order": ticked})
    ).status_code == 403


async def test_an_allocated_order_is_put_on_hold_from_its_page(client, db, orders):
    await put_in_stock(db, orders["site_id"], "SKU-WATER", 20)
    await reserve_line(db, orders["released"]["id"], 1, 12)
    await as_(client, "supervisor")
    url = f"/sites/LYS/orders/{orders['released']['id']}"
    page = await client.get(url, headers={"Accept-Language": "fr"})
    assert "Mettre en attente" in page.text
    held = await post_form(client, f"{url}/hold", {"idempotency_key": hidden_key(page.text)}, headers=HTMX)
    assert (held.status_code, held.headers["hx-redirect"]) == (200, url)
    after = unescape((await client.get(url)).text)
    assert "Brouillon" in after and "Mettre en attente" not in after and "Lancer" in after
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 0
    await assert_stock_invariants(db)
    # An order with units picked is not offered a hold it would be refused.
    await post_form(client, f"{url}/release", {"idempotency_key": "again"})
    await reserve_line(db, orders["released"]["id"], 1, 12)
    await mark_picked(db, orders["released"]["id"], 1, 5)
    assert "Mettre en attente" not in (await client.get(url)).text
