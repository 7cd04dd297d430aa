"""The picking and shipment API through the real app and database, with bearer tokens."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.integration.picking_fixtures import balance, dispatched_day
from tests.integration.stock_fixtures import assert_stock_invariants
from tests.integration.test_api_stock import assert_problem, bearer

GS1_YOG_L1 = "]C1" + "0103760000000024" + "17270131" + "10L1"


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


async def confirm(client, auth, task_id, key=None, **body):
    headers = {**auth} if key == "" else {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post(f"/api/v1/pick-tasks/{task_id}/confirm", json=body, headers=headers)


async def test_pick_lists_come_with_their_tasks_in_walking_order(client, day):
    auth = await bearer(client, "operator")
    response = await client.get("/api/v1/pick-lists", params={"site": "LYS", "status": "open"}, headers=auth)
    assert response.status_code == 200, response.text
    lists = {item["zone"]: item for item in response.json()["items"]}
    assert set(lists) == {"A", "B"}
    [flour] = lists["A"]["tasks"]
    assert (flour["location"], flour["sku"], flour["quantity"], flour["destination"]) == (
        "A-01-01",
        "SKU-FLOUR",
        20,
        "MAG-A",
    )
    assert lists["B"]["tasks"][0]["lot"] == "L1"
    taken = await client.get("/api/v1/pick-lists", params={"status": "taken"}, headers=auth)
    assert taken.json()["items"] == []


async def test_pick_lists_of_another_site_are_not_yours(client, day):
    auth = await bearer(client, "lille_operator")
    assert_problem(await client.get("/api/v1/pick-lists", params={"site": "LYS"}, headers=auth), 403)
    everything = await client.get("/api/v1/pick-lists", headers=auth)
    assert everything.json()["items"] == []
    refused = await confirm(
        client, auth, day.flour_task, location="A-01-01", product="SKU-FLOUR", quantity=20
    )
    assert_problem(refused, 404)


async def test_a_confirmation_moves_stock_once_and_a_replay_returns_the_same_answer(client, db, day):
    auth = await bearer(client, "operator")
    first = await confirm(
        client, auth, day.yog_task, key="api-1", location="LOC-LYS-B-01-01", product=GS1_YOG_L1, quantity=12
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["picked"], body["short"], body["list_status"]) == ("picked", 12, 0, "done")
    again = await confirm(
        client, auth, day.yog_task, key="api-1", location="LOC-LYS-B-01-01", product=GS1_YOG_L1, quantity=12
    )
    assert (again.status_code, again.json()) == (201, body)
    assert await balance(db, "SKU-YOG", "QUAI-E1") == (12, 0)
    await assert_stock_invariants(db)


async def test_each_wrong_scan_is_a_problem_naming_what_is_wrong(client, db, day):
    auth = await bearer(client, "operator")
    body = assert_problem(
        await confirm(client, auth, day.flour_task, location="A-01-02", product="SKU-FLOUR", quantity=20), 422
    )
    assert (body["problem"], body["expected"], body["scanned"], body["field"]) == (
        "wrong_location",
        "A-01-01",
        "A-01-02",
        "location",
    )
    body = assert_problem(
        await confirm(
            client, auth, day.yog_task, location="B-01-01", product="SKU-YOG", lot="L9", quantity=12
        ),
        422,
    )
    assert (body["problem"], body["expected"], body["scanned"]) == ("wrong_lot", "L1", "L9")
    body = assert_problem(
        await confirm(client, auth, day.flour_task, location="A-01-01", product="SKU-FLOUR", quantity=25), 422
    )
    assert body["problem"] == "too_many"
    async with db.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM stock_movements WHERE kind = 'pick'")) == 0


async def test_a_confirmation_needs_an_idempotency_key_and_known_fields(client, day):
    auth = await bearer(client, "operator")
    body = assert_problem(
        await confirm(
            client, auth, day.flour_task, key="", location="A-01-01", product="SKU-FLOUR", quantity=20
        ),
        422,
    )
    assert body["field"] == "Idempotency-Key"
    assert_problem(
        await confirm(
            client, auth, day.flour_task, location="A-01-01", product="SKU-FLOUR", quantity=20, qty=1
        ),
        400,
    )
    assert_problem(await confirm(client, auth, day.flour_task, location="A-01-01", quantity=-1), 400)


async def test_a_short_pick_then_a_shipment_with_its_backorder(client, db, day):
    auth = await bearer(client, "operator")
    short = await confirm(
        client, auth, day.flour_task, location="A-01-01", product="03760000000048", quantity=15
    )
    assert short.json()["short"] == 5
    await confirm(client, auth, day.yog_task, location="B-01-01", product=GS1_YOG_L1, quantity=12)
    headers = {**auth, "Idempotency-Key": "ship-1"}
    response = await client.post(
        "/api/v1/shipments", json={"site": "LYS", "destination": "MAG-A", "parcels": 2}, headers=headers
    )
    assert response.status_code == 201, response.text
    shipment = response.json()
    assert shipment["number"].startswith("EXP-") and shipment["units"] == 27
    assert len(shipment["dispatched"]) == 1 and shipment["backorders"] == [shipment["dispatched"][0] + "-R1"]
    nothing = await client.post(
        "/api/v1/shipments",
        json={"site": "LYS", "destination": "MAG-A"},
        headers={**auth, "Idempotency-Key": "ship-2"},
    )
    assert_problem(nothing, 409)
    await assert_stock_invariants(db)


async def test_shipments_only_at_your_sites(client, day):
    auth = await bearer(client, "lille_operator")
    response = await client.post(
        "/api/v1/shipments",
        json={"site": "LYS", "destination": "MAG-A"},
        headers={**auth, "Idempotency-Key": "k"},
    )
    assert assert_problem(response, 403)["site"] == "LYS"


async def test_the_openapi_schema_describes_the_picking_endpoints(client):
    schema = (await client.get("/api/schema/openapi.json")).json()
    assert "/api/v1/pick-lists" in schema["paths"]
    confirm_op = schema["paths"]["/api/v1/pick-tasks/{task_id}/confirm"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in confirm_op["parameters"])
    assert "/api/v1/shipments" in schema["paths"]
