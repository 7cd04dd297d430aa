"""The JSON API of the stock record, through the real app and database, with bearer tokens."""

import uuid
from typing import get_args

import pytest
from sqlalchemy import func, select, text

from app.db.models import StockMovement
from app.routes.api_stock import MovementKindName
from app.services.stock import SIMPLE_KINDS
from tests.conftest import PERSONAS
from tests.helpers import login
from tests.integration.stock_fixtures import assert_ledger_equals_balances, make_catalog
from tests.integration.test_operations import visible_text

PROBLEM = "application/problem+json"


@pytest.fixture
async def catalog(db):
    return await make_catalog(db)


async def bearer(client, who):
    p = PERSONAS[who]
    response = await client.post("/api/v1/auth/token", json={"username": p.username, "password": p.password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def move(client, auth, key=None, **body):
    headers = {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post("/api/v1/movements", json={"site": "LYS", **body}, headers=headers)


async def stock(client, auth, **filters):
    response = await client.get("/api/v1/stock", params=filters, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def on_hand(page):
    return {(row["site"], row["location"], row["sku"], row["lot"]): row["on_hand"] for row in page["items"]}


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def movement_count(db):
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(StockMovement))


async def test_the_api_needs_a_bearer_token_and_refuses_the_browser_session_cookie(client, catalog):
    assert_problem(await client.get("/api/v1/stock"), 401)
    p = PERSONAS["operator"]
    assert (await login(client, p.username, p.password)).status_code == 303
    assert_problem(await client.get("/api/v1/stock"), 401)
    assert_problem(await client.get("/api/v1/products", headers={"Authorization": "Bearer forged"}), 401)
    assert (await client.get("/api/v1/stock", headers=await bearer(client, "operator"))).status_code == 200


async def test_received_stock_can_be_transferred_and_shows_in_the_stock(client, db, catalog):
    auth = await bearer(client, "operator")
    receipt = await move(client, auth, kind="receipt", product="03760000000017", quantity=24, to="QUAI-R1")
    assert receipt.status_code == 201, receipt.text
    assert len(receipt.json()["movements"]) == 1
    transfer = await move(
        client,
        auth,
        kind="transfer",
        product="SKU-WATER",
        quantity=10,
        **{"from": "QUAI-R1", "to": "A-01-01"},
    )
    assert transfer.status_code == 201, transfer.text
    balances = {b["location"]: (b["on_hand"], b["available"]) for b in transfer.json()["balances"]}
    assert balances == {"QUAI-R1": (14, 14), "A-01-01": (10, 10)}
    assert on_hand(await stock(client, auth, sku="SKU-WATER")) == {
        ("LYS", "QUAI-R1", "SKU-WATER", None): 14,
        ("LYS", "A-01-01", "SKU-WATER", None): 10,
    }
    await assert_ledger_equals_balances(db)


async def test_moving_more_than_there_is_is_a_409_problem_saying_how_much_is_available(client, db, catalog):
    auth = await bearer(client, "operator")
    await move(client, auth, kind="receipt", product="SKU-FLOUR", quantity=4, to="A-01-03")
    short = await move(
        client,
        {**auth, "Accept-Language": "en"},
        kind="transfer",
        product="SKU-FLOUR",
        quantity=6,
        **{"from": "A-01-03", "to": "A-01-01"},
    )
    body = assert_problem(short, 409)
    assert (body["location"], body["available"], body["requested"]) == ("A-01-03", 4, 6)
    assert body["detail"] == "Location A-01-03: only 4 in stock, 6 requested."
    assert await movement_count(db) == 1


async def test_a_replayed_movement_gets_the_same_answer_and_moves_the_stock_once(client, db, catalog):
    auth = await bearer(client, "operator")
    first = await move(
        client, auth, key="replay-1", kind="receipt", product="SKU-WATER", quantity=12, to="A-01-01"
    )
    again = await move(
        client, auth, key="replay-1", kind="receipt", product="SKU-WATER", quantity=12, to="A-01-01"
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert on_hand(await stock(client, auth)) == {("LYS", "A-01-01", "SKU-WATER", None): 12}
    assert await movement_count(db) == 1


async def test_a_key_reused_for_another_body_is_a_422_problem(client, db, catalog):
    auth = await bearer(client, "operator")
    await move(client, auth, key="k1", kind="receipt", product="SKU-WATER", quantity=12, to="A-01-01")
    assert_problem(
        await move(client, auth, key="k1", kind="receipt", product="SKU-WATER", quantity=13, to="A-01-01"),
        422,
    )
    assert await movement_count(db) == 1


async def test_a_movement_without_an_idempotency_key_is_refused_naming_the_header(client, db, catalog):
    auth = await bearer(client, "operator")
    response = await client.post(
        "/api/v1/movements",
        json={"kind": "receipt", "site": "LYS", "product": "SKU-WATER", "quantity": 1, "to": "A-01-01"},
        headers=auth,
    )
    body = assert_problem(response, 422)
    assert body["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in body["detail"]
    assert await movement_count(db) == 0


async def test_an_operator_cannot_move_stock_at_a_site_they_do_not_work_on(client, db, catalog):
    receipt = {"kind": "receipt", "site": "LIL", "product": "SKU-WATER", "quantity": 5, "to": "A-01-01"}
    refused = await move(client, await bearer(client, "operator"), **receipt)
    assert assert_problem(refused, 403)["site"] == "LIL"
    assert await movement_count(db) == 0
    assert (await move(client, await bearer(client, "admin"), **receipt)).status_code == 201


async def test_a_refused_site_does_not_use_up_the_idempotency_key(client, db, catalog):
    # The site is looked up in the use case's transaction, yet a site refusal is not the key's answer.
    auth = await bearer(client, "operator")
    body = {"kind": "receipt", "product": "SKU-WATER", "quantity": 5, "to": "A-01-01"}
    assert_problem(await move(client, auth, key="site-1", **{**body, "site": "LIL"}), 403)
    assert assert_problem(await move(client, auth, key="site-1", **{**body, "site": "PAR"}), 422)[
        "field"
    ] == ("site")
    done = await move(client, auth, key="site-1", **{**body, "site": " lys "})
    assert done.status_code == 201, done.text
    assert (await move(client, auth, key="site-1", **{**body, "site": "LYS"})).json() == done.json()
    assert await movement_count(db) == 1


async def test_malformed_bodies_are_400_problems_listing_what_is_wrong(client, catalog):
    auth = await bearer(client, "operator")
    bad_kind = await move(client, auth, kind="teleport", product="SKU-WATER", quantity=1, to="A-01-01")
    assert [e["key"] for e in assert_problem(bad_kind, 400)["errors"]] == ["kind"]
    bad_date = await move(
        client,
        auth,
        kind="receipt",
        product="SKU-YOG",
        quantity=1,
        to="A-01-01",
        lot="L1",
        expiry="31/12/2026",
    )
    assert [e["key"] for e in assert_problem(bad_date, 400)["errors"]] == ["expiry"]
    typo = await move(client, auth, kind="receipt", product="SKU-WATER", quantity=1, too="A-01-01")
    assert "too" in assert_problem(typo, 400)["errors"][0]["message"]
    huge = await move(client, auth, kind="receipt", product="SKU-WATER", quantity=2**31, to="A-01-01")
    assert [e["key"] for e in assert_problem(huge, 400)["errors"]] == ["quantity"]
    not_json = await client.post(
        "/api/v1/movements",
        content=b"{not json",
        headers={**auth, "Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert_problem(not_json, 400)


async def test_a_service_refusal_names_the_field_as_the_api_spells_it(client, catalog):
    auth = await bearer(client, "operator")
    body = assert_problem(
        await move(client, auth, kind="receipt", product="SKU-WATER", quantity=0, to="A-01-01"), 422
    )
    assert body["field"] == "quantity"
    both_sides = {"from": "A-01-01", "to": "A-01-02", "reason": "breakage"}
    body = assert_problem(
        await move(client, auth, kind="adjustment", product="SKU-WATER", quantity=1, **both_sides), 422
    )
    assert body["field"] == "from"
    no_target = await move(
        client, auth, kind="transfer", product="SKU-WATER", quantity=1, **{"from": "A-01-01"}
    )
    assert assert_problem(no_target, 422)["field"] == "to"
    unknown = await move(client, auth, kind="receipt", product="SKU-NOPE", quantity=1, to="A-01-01")
    assert assert_problem(unknown, 404)["product"] == "SKU-NOPE"


async def test_a_product_is_created_then_unchanged_then_updated_by_put(client, db, catalog):
    auth = await bearer(client, "supervisor")
    product = {"name": "Sucre 1 kg", "pack_size": 10, "gtins": ["3760000000055"]}
    created = await client.put("/api/v1/products/SKU-SUGAR", json=product, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["gtins"] == ["03760000000055"]

    async def version():
        async with db.sessions() as s:
            return await s.scalar(text("SELECT xmin::text FROM products WHERE sku = 'SKU-SUGAR'"))

    before = await version()
    unchanged = await client.put("/api/v1/products/SKU-SUGAR", json=product, headers=auth)
    assert (unchanged.status_code, unchanged.json()) == (200, created.json())
    assert await version() == before  # nothing was rewritten
    renamed = await client.put(
        "/api/v1/products/SKU-SUGAR", json={**product, "name": "Sucre 2 kg"}, headers=auth
    )
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Sucre 2 kg")
    shown = await client.get("/api/v1/products/SKU-SUGAR", headers=await bearer(client, "operator"))
    assert shown.json() == renamed.json()


async def test_what_dispatch_runs_may_do_with_a_product_is_set_by_put_and_shown_on_its_page(
    client, db, catalog
):
    auth = await bearer(client, "supervisor")
    body = {"name": "Sucre 1 kg", "pack_size": 10, "allow_eaches": True, "holdback_units": 25}
    saved = await client.put("/api/v1/products/SKU-SUGAR", json=body, headers=auth)
    assert saved.status_code == 201, saved.text
    assert (saved.json()["allow_eaches"], saved.json()["holdback_units"], saved.json()["round_up_packs"]) == (
        True,
        25,
        False,
    )
    assert_problem(
        await client.put("/api/v1/products/SKU-SUGAR", json={**body, "holdback_units": -1}, headers=auth), 400
    )
    async with db.sessions() as s:
        kept = await s.scalar(text("SELECT holdback_units FROM products WHERE sku = 'SKU-SUGAR'"))
    assert kept == 25
    persona = PERSONAS["supervisor"]
    assert (await login(client, persona.username, persona.password)).status_code == 303
    page = " ".join(visible_text((await client.get("/sites/LYS/products/SKU-SUGAR")).text).split())
    assert "Unités hors colis Oui" in page and "Stock de sécurité 25 unités gardées hors répartition" in page


async def test_only_supervisors_and_admins_change_products(client, catalog):
    body = {"name": "Sel 1 kg"}
    assert_problem(
        await client.put("/api/v1/products/SKU-SALT", json=body, headers=await bearer(client, "operator")),
        403,
    )
    admin = await bearer(client, "admin")
    assert (await client.put("/api/v1/products/SKU-SALT", json=body, headers=admin)).status_code == 201


async def test_an_invalid_product_is_a_problem_naming_the_field(client, catalog):
    auth = await bearer(client, "supervisor")
    bad_gtin = await client.put(
        "/api/v1/products/SKU-SALT", json={"name": "Sel", "gtins": ["3760000000018"]}, headers=auth
    )
    body = assert_problem(bad_gtin, 422)
    assert (body["field"], body["gtin"]) == ("gtins", "3760000000018")
    taken = await client.put(
        "/api/v1/products/SKU-SALT", json={"name": "Sel", "gtins": ["3760000000017"]}, headers=auth
    )
    assert (assert_problem(taken, 422)["field"], taken.json()["gtin"]) == ("gtins", "03760000000017")
    # A misspelt key is refused, not ignored (it would have removed every GTIN of the product).
    typo = await client.put("/api/v1/products/SKU-WATER", json={"name": "Eau", "gtin": []}, headers=auth)
    assert_problem(typo, 400)
    missing = await client.put("/api/v1/products/SKU-SALT", json={"pack_size": 1}, headers=auth)
    assert "`name`" in assert_problem(missing, 400)["errors"][0]["message"]


async def test_products_are_listed_searched_and_shown(client, catalog):
    auth = await bearer(client, "operator")
    everything = (await client.get("/api/v1/products", headers=auth)).json()
    assert [p["sku"] for p in everything["items"]] == ["SKU-FLOUR", "SKU-GLOVE", "SKU-WATER", "SKU-YOG"]
    assert everything["total"] == 4
    by_name = (await client.get("/api/v1/products", params={"q": "yaourt"}, headers=auth)).json()
    assert [p["sku"] for p in by_name["items"]] == ["SKU-YOG"]
    by_gtin = (await client.get("/api/v1/products", params={"q": "3760000000031"}, headers=auth)).json()
    assert [p["sku"] for p in by_gtin["items"]] == ["SKU-GLOVE"]
    # A LIKE wildcard in the search is a plain character.
    assert (await client.get("/api/v1/products", params={"q": "%"}, headers=auth)).json()["total"] == 0
    page = (await client.get("/api/v1/products", params={"limit": 2, "offset": 2}, headers=auth)).json()
    assert ([p["sku"] for p in page["items"]], page["total"]) == (["SKU-WATER", "SKU-YOG"], 4)
    assert "limit" in str(assert_problem(await client.get("/api/v1/products?limit=201", headers=auth), 400))
    yog = (await client.get("/api/v1/products/SKU-YOG", headers=auth)).json()
    assert (yog["lot_tracked"], yog["expiry_tracked"], yog["gtins"]) == (True, True, ["03760000000024"])
    assert (
        assert_problem(await client.get("/api/v1/products/SKU-NOPE", headers=auth), 404)["product"]
        == "SKU-NOPE"
    )


async def test_a_sku_holding_a_slash_is_reachable(client, catalog):
    auth = await bearer(client, "supervisor")
    assert (
        await client.put("/api/v1/products/PAL/120", json={"name": "Palette"}, headers=auth)
    ).status_code == 201
    assert (await client.get("/api/v1/products/PAL/120", headers=auth)).json()["sku"] == "PAL/120"


async def test_locations_are_created_and_listed_only_at_the_users_sites(client, catalog):
    supervisor = await bearer(client, "supervisor")
    created = await client.post(
        "/api/v1/locations", json={"site": "lil", "code": "b-01-01", "pick_seq": 20}, headers=supervisor
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "site": "LIL",
        "code": "B-01-01",
        "barcode": "LOC-LIL-B-01-01",
        "kind": "storage",
        "zone": "B",
        "pick_seq": 20,
        "is_active": True,
    }
    again = await client.post(
        "/api/v1/locations", json={"site": "LIL", "code": "B-01-01"}, headers=supervisor
    )
    assert (assert_problem(again, 409)["code"], again.json()["site"]) == ("B-01-01", "LIL")
    clash = await client.post(
        "/api/v1/locations",
        json={"site": "LIL", "code": "C-01-01", "barcode": "LOC-LYS-A-01-01"},
        headers=supervisor,
    )
    assert (assert_problem(clash, 409)["code"], clash.json()["site"]) == ("A-01-01", "LYS")
    bad_kind = await client.post(
        "/api/v1/locations", json={"site": "LIL", "code": "C-01-01", "kind": "attic"}, headers=supervisor
    )
    assert assert_problem(bad_kind, 422)["field"] == "kind"
    nowhere = await client.post(
        "/api/v1/locations", json={"site": "PAR", "code": "A-01-01"}, headers=supervisor
    )
    assert assert_problem(nowhere, 422)["field"] == "site"

    lucas = await bearer(client, "lille_operator")
    assert_problem(
        await client.post("/api/v1/locations", json={"site": "LIL", "code": "Z-1"}, headers=lucas), 403
    )
    lille = (await client.get("/api/v1/locations", headers=lucas)).json()
    assert [(loc["site"], loc["code"]) for loc in lille["items"]] == [("LIL", "A-01-01"), ("LIL", "B-01-01")]
    assert_problem(await client.get("/api/v1/locations", params={"site": "LYS"}, headers=lucas), 403)

    admin = await bearer(client, "admin")
    docks = (await client.get("/api/v1/locations", params={"kind": "receiving"}, headers=admin)).json()
    assert [(loc["site"], loc["code"]) for loc in docks["items"]] == [("LYS", "QUAI-R1")]
    assert (await client.get("/api/v1/locations", headers=admin)).json()["total"] == 8
    lyon = (await client.get("/api/v1/locations", params={"site": "LYS", "limit": 2}, headers=admin)).json()
    assert ([loc["code"] for loc in lyon["items"]], lyon["total"]) == (["QUAI-R1", "A-01-01"], 6)


async def test_the_stock_is_filtered_and_scoped_to_the_users_sites(client, catalog):
    admin = await bearer(client, "admin")
    await move(client, admin, kind="receipt", site="LIL", product="SKU-WATER", quantity=7, to="A-01-01")
    await move(client, admin, kind="receipt", product="SKU-WATER", quantity=3, to="A-01-02")
    for lot, expiry, quantity in (("L2", "2027-01-31", 5), ("L1", "2026-12-31", 8)):
        await move(
            client,
            admin,
            kind="receipt",
            product="SKU-YOG",
            quantity=quantity,
            to="A-01-01",
            lot=lot,
            expiry=expiry,
        )

    assert on_hand(await stock(client, admin)) == {
        ("LIL", "A-01-01", "SKU-WATER", None): 7,
        ("LYS", "A-01-01", "SKU-YOG", "L1"): 8,
        ("LYS", "A-01-01", "SKU-YOG", "L2"): 5,
        ("LYS", "A-01-02", "SKU-WATER", None): 3,
    }
    operator = await bearer(client, "operator")
    mine = await stock(client, operator)
    assert {key[0] for key in on_hand(mine)} == {"LYS"} and mine["total"] == 3
    assert mine["items"][0] == {
        "site": "LYS",
        "location": "A-01-01",
        "sku": "SKU-YOG",
        "product_name": "Yaourt nature x4",
        "lot": "L1",
        "expiry": "2026-12-31",
        "on_hand": 8,
        "reserved": 0,
        "available": 8,
    }
    assert_problem(await client.get("/api/v1/stock", params={"site": "LIL"}, headers=operator), 403)
    assert list(on_hand(await stock(client, operator, lot="L2"))) == [("LYS", "A-01-01", "SKU-YOG", "L2")]
    assert list(on_hand(await stock(client, operator, location="LOC-LYS-A-01-02"))) == [
        ("LYS", "A-01-02", "SKU-WATER", None)
    ]
    assert list(on_hand(await stock(client, admin, sku="SKU-WATER", site="LIL"))) == [
        ("LIL", "A-01-01", "SKU-WATER", None)
    ]
    page = await stock(client, admin, site="LYS", limit=1, offset=1)
    assert (list(on_hand(page)), page["total"]) == ([("LYS", "A-01-01", "SKU-YOG", "L2")], 3)


async def test_the_openapi_schema_documents_every_api_endpoint(client):
    spec = (await client.get("/api/schema/openapi.json")).json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert {
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/products/{sku}"),
        ("PUT", "/api/v1/products/{sku}"),
        ("GET", "/api/v1/locations"),
        ("POST", "/api/v1/locations"),
        ("GET", "/api/v1/stock"),
        ("POST", "/api/v1/movements"),
    } <= documented
    movement = spec["paths"]["/api/v1/movements"]["post"]
    assert movement["description"]
    assert {"name": "Idempotency-Key", "in": "header", "required": True}.items() <= movement["parameters"][
        0
    ].items()
    assert {"201", "403", "409", "422"} <= set(movement["responses"])
    assert PROBLEM in movement["responses"]["409"]["content"]
    body = spec["components"]["schemas"]["MovementBody"]["properties"]
    assert {"from", "to", "expiry"} <= set(body)
    assert set(spec["paths"]["/api/v1/products/{sku}"]["put"]["responses"]) >= {"200", "201", "422"}


def test_the_api_offers_exactly_the_movement_kinds_the_service_records():
    assert set(get_args(MovementKindName)) == {kind.value for kind in SIMPLE_KINDS}
