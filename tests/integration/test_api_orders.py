"""The JSON API of destinations and orders: problems, idempotency, site scoping, release and cancel."""

import uuid

import pytest
from sqlalchemy import func, select, text

from app.db.models import Destination, DispatchOrder
from tests.integration.order_fixtures import make_destinations, put_in_stock, reserve_line
from tests.integration.stock_fixtures import assert_stock_invariants, make_catalog
from tests.integration.test_api_stock import assert_problem, bearer

ORDER = {
    "site": "LYS",
    "destination": "MAG-002",
    "due_at": "2099-11-26T16:00:00+01:00",
    "lines": [{"product": "SKU-WATER", "quantity": 24}, {"product": "03760000000048", "quantity": 10}],
}


@pytest.fixture
async def catalog(db):
    catalog = await make_catalog(db)
    await make_destinations(db)
    return catalog


async def post(client, auth, url, body=None, key=None):
    headers = {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post(url, json=body, headers=headers)


async def orders_in_db(db):
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(DispatchOrder))


async def test_an_order_posted_comes_back_with_its_lines_and_can_be_read_and_listed(client, catalog):
    auth = await bearer(client, "supervisor")
    created = await post(client, auth, "/api/v1/orders", {**ORDER, "number": "ERP-1"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["number"], body["state"], body["source"], body["priority"], body["units"]) == (
        "ERP-1",
        "draft",
        "api",
        2,
        34,
    )
    assert body["due_at"] == "2099-11-26T15:00:00Z"
    assert [(line["sku"], line["quantity"], line["allocated"], line["need"]) for line in body["lines"]] == [
        ("SKU-WATER", 24, 0, 24),
        ("SKU-FLOUR", 10, 0, 10),
    ]
    shown = await client.get(f"/api/v1/orders/{body['id']}", headers=auth)
    assert shown.status_code == 200 and shown.json() == body
    listed = await client.get("/api/v1/orders", params={"site": "LYS", "state": "draft"}, headers=auth)
    assert [(o["number"], o["lines"], o["late"]) for o in listed.json()["items"]] == [("ERP-1", 2, False)]
    assert listed.json()["total"] == 1


async def test_a_replayed_post_returns_the_first_answer_and_a_reused_key_is_a_422(client, db, catalog):
    auth = await bearer(client, "supervisor")
    first = await post(client, auth, "/api/v1/orders", ORDER, key="o-1")
    again = await post(client, auth, "/api/v1/orders", ORDER, key="o-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert_problem(await post(client, auth, "/api/v1/orders", {**ORDER, "release": True}, key="o-1"), 422)
    assert await orders_in_db(db) == 1


async def test_every_post_needs_an_idempotency_key(client, db, catalog):
    auth = await bearer(client, "supervisor")
    for url, body in (
        ("/api/v1/orders", ORDER),
        ("/api/v1/destinations", {"code": "X", "name": "X", "tier": 1}),
        ("/api/v1/orders/1/release", None),
        ("/api/v1/orders/1/cancel", None),
    ):
        response = await client.post(url, json=body, headers=auth)
        if url.endswith(("release", "cancel")):
            assert_problem(response, 404)  # the order is looked up first
        else:
            assert assert_problem(response, 422)["field"] == "Idempotency-Key"
    assert await orders_in_db(db) == 0


async def test_an_unknown_product_is_a_422_problem_naming_the_line(client, db, catalog):
    auth = await bearer(client, "supervisor")
    body = {**ORDER, "lines": [{"product": "SKU-WATER", "quantity": 1}, {"product": "NOPE", "quantity": 1}]}
    problem = assert_problem(
        await post(client, {**auth, "Accept-Language": "en"}, "/api/v1/orders", body), 422
    )
    assert (problem["field"], problem["line"], problem["product"]) == ("lines", 2, "NOPE")
    assert problem["detail"] == "Line 2: unknown product NOPE."
    assert await orders_in_db(db) == 0


async def test_unknown_fields_and_a_due_date_without_offset_are_400_problems(client, db, catalog):
    auth = await bearer(client, "supervisor")
    assert_problem(await post(client, auth, "/api/v1/orders", {**ORDER, "dueAt": "2026-11-26"}), 400)
    assert_problem(
        await post(client, auth, "/api/v1/orders", {**ORDER, "due_at": "2026-11-26T16:00:00"}), 400
    )
    assert await orders_in_db(db) == 0


async def test_orders_are_scoped_to_the_sites_you_work_at(client, db, catalog):
    samir = await bearer(client, "supervisor")  # LYS and LIL
    lille = (
        await post(client, samir, "/api/v1/orders", {**ORDER, "site": "LIL", "lines": ORDER["lines"][:1]})
    ).json()
    lyon = (await post(client, samir, "/api/v1/orders", ORDER)).json()
    olivia = await bearer(client, "operator")  # LYS only
    listed = (await client.get("/api/v1/orders", headers=olivia)).json()
    assert [o["number"] for o in listed["items"]] == [lyon["number"]]
    assert (
        assert_problem(await client.get(f"/api/v1/orders/{lille['id']}", headers=olivia), 403)["site"]
        == "LIL"
    )
    assert_problem(await client.get("/api/v1/orders", params={"site": "LIL"}, headers=olivia), 403)
    assert_problem(await client.get("/api/v1/orders/999999", headers=olivia), 404)
    assert_problem(
        await post(client, olivia, "/api/v1/orders", ORDER), 403
    )  # operators read, supervisors write
    assert_problem(await client.get("/api/v1/orders", params={"state": "lost"}, headers=olivia), 422)


async def test_release_then_cancel_through_the_api_with_the_reservation_given_back(client, db, catalog):
    auth = await bearer(client, "supervisor")
    order = (await post(client, auth, "/api/v1/orders", ORDER)).json()
    released = await post(client, auth, f"/api/v1/orders/{order['id']}/release", key="r-1")
    assert released.status_code == 200
    assert released.json() == {
        "id": order["id"],
        "number": order["number"],
        "state": "released",
        "released_units": 0,
    }
    replay = await post(client, auth, f"/api/v1/orders/{order['id']}/release", key="r-1")
    assert replay.json() == released.json()
    problem = assert_problem(await post(client, auth, f"/api/v1/orders/{order['id']}/release"), 409)
    assert problem["state"] == "released"
    await put_in_stock(db, catalog.site_id, "SKU-WATER", 30)
    await reserve_line(db, order["id"], 1, 24)
    held = await post(client, auth, f"/api/v1/orders/{order['id']}/hold")
    assert held.json() == {
        "id": order["id"],
        "number": order["number"],
        "state": "draft",
        "released_units": 24,
    }
    await post(client, auth, f"/api/v1/orders/{order['id']}/release")
    await reserve_line(db, order["id"], 1, 24)
    cancelled = await post(client, auth, f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["released_units"] == 24
    shown = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth)).json()
    assert shown["lines"][0]["allocated"] == 0 and shown["state"] == "cancelled"
    await assert_stock_invariants(db)


async def test_destinations_are_created_then_updated_by_code_and_never_show_their_secrets(
    client, db, catalog
):
    auth = await bearer(client, "supervisor")
    body = {"code": "mag-050", "name": "Magasin Écully", "tier": 1, "min_units": 12, "max_units": 480}
    created = await post(client, auth, "/api/v1/destinations", {**body, "address": "1 place de la Mairie"})
    assert created.status_code == 201, created.text
    assert created.json()["code"] == "MAG-050" and created.json()["created"] is True
    updated = await post(client, auth, "/api/v1/destinations", {**body, "tier": 2, "quota_percent": 12.5})
    assert updated.status_code == 200
    assert (updated.json()["tier"], updated.json()["quota_percent"]) == (2, 12.5)
    assert updated.json()["changed"] == ["tier", "quota_percent"]  # the address, not given, was kept
    listed = await client.get("/api/v1/destinations", params={"q": "écully"}, headers=auth)
    assert [d["code"] for d in listed.json()["items"]] == ["MAG-050"]
    assert "address" not in listed.text and "Mairie" not in listed.text
    async with db.sessions() as s:
        address = await s.scalar(select(Destination.address).where(Destination.code == "MAG-050"))
    assert address == "1 place de la Mairie"


async def test_a_destination_with_max_below_min_is_a_422_and_operators_may_not_write(client, db, catalog):
    auth = await bearer(client, "supervisor")
    problem = assert_problem(
        await post(
            client,
            auth,
            "/api/v1/destinations",
            {"code": "X-1", "name": "X", "tier": 1, "min_units": 9, "max_units": 3},
        ),
        422,
    )
    assert problem["field"] == "max_units"
    assert_problem(
        await post(
            client,
            await bearer(client, "operator"),
            "/api/v1/destinations",
            {"code": "X-2", "name": "X", "tier": 1},
        ),
        403,
    )
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM destinations WHERE code LIKE 'X-%'")) == 0


async def test_the_new_endpoints_are_in_the_openapi_schema(client, catalog):
    schema = (await client.get("/api/schema/openapi.json")).json()
    for path in (
        "/api/v1/destinations",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/release",
        "/api/v1/orders/{order_id}/hold",
        "/api/v1/orders/{order_id}/cancel",
    ):
        assert path in schema["paths"], path
    assert "put" in schema["paths"]["/api/v1/orders/{order_id}"]
    create = schema["paths"]["/api/v1/orders"]["post"]
    assert {"201", "409", "422"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


async def test_an_order_is_edited_through_the_api_once_and_only_while_nothing_was_reserved(
    client, db, catalog
):
    auth = await bearer(client, "supervisor")
    order = (await post(client, auth, "/api/v1/orders", {**ORDER, "release": True})).json()
    url, key = f"/api/v1/orders/{order['id']}", {**auth, "Idempotency-Key": "edit-1"}
    body = {
        "destination": "MAG-001",
        "due_at": "2099-11-27T09:00:00+01:00",
        "lines": [{"product": "SKU-FLOUR", "quantity": 30}],
        "updated_at": order["updated_at"],
    }
    edited = await client.put(url, json=body, headers=key)
    assert edited.status_code == 200, edited.text
    answer = edited.json()
    assert answer["changed"] == ["destination", "due_at", "priority", "lines"]  # MAG-001 is tier 1
    assert (
        answer["number"],
        answer["state"],
        answer["destination"],
        answer["priority"],
        answer["units"],
    ) == (
        order["number"],
        "released",
        "MAG-001",
        1,
        30,
    )
    assert [(line["sku"], line["quantity"]) for line in answer["lines"]] == [("SKU-FLOUR", 30)]
    assert (await client.put(url, json=body, headers=key)).json() == answer  # a replay: the first answer
    # The same body again, as a new request, names a version that is no longer the order's.
    stale = assert_problem(
        await client.put(url, json=body, headers={**auth, "Idempotency-Key": "edit-2"}), 409
    )
    assert (stale["number"], stale["detail"]) == (
        order["number"],
        f"Order {order['number']} was changed by someone else since you read it.",
    )
    assert stale["updated_at"] == answer["updated_at"].replace("Z", "+00:00")  # the version to read again
    no_key = await client.put(url, json={**body, "updated_at": None}, headers=auth)
    assert assert_problem(no_key, 422)["field"] == "Idempotency-Key"
    await put_in_stock(db, catalog.site_id, "SKU-FLOUR", 30)
    await reserve_line(db, order["id"], 1, 30)
    reserved = await client.put(
        url, json={**body, "updated_at": None}, headers={**auth, "Idempotency-Key": "e3"}
    )
    assert assert_problem(reserved, 409)["state"] == "allocated"
    olivia = await bearer(client, "operator")
    assert_problem(await client.put(url, json=body, headers={**olivia, "Idempotency-Key": "e4"}), 403)
    assert_problem(
        await client.put(url, json={**body, "site": "LYS"}, headers={**auth, "Idempotency-Key": "e5"}), 400
    )
    assert_problem(
        await client.put("/api/v1/orders/999999", json=body, headers={**auth, "Idempotency-Key": "e6"}), 404
    )
    shown = (await client.get(url, headers=auth)).json()
    assert [(line["sku"], line["quantity"]) for line in shown["lines"]] == [("SKU-FLOUR", 30)]
    await assert_stock_invariants(db)
