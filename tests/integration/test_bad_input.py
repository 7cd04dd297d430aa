"""Malformed input anywhere gets a clear 4xx and changes nothing: never a 500.

Every operation of the OpenAPI schema (the JSON API and the pages' routes) is called with each of its
parameters and each field of a valid body replaced, one at a time, by values people and programs do
send: a NUL character (no PostgreSQL text holds one), half of a surrogate pair, a very long text,
integers beyond the database's types, wrong types. Pages are asked both whole and as an htmx fragment;
a form's fields are those the pages' own forms post (the schema does not list them).
"""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.session import Unstorable, driver, unstorable_value
from tests.conftest import PERSONAS
from tests.helpers import csrf_token, login
from tests.integration.picking_fixtures import Day, dispatched_day
from tests.integration.test_api_stock import PROBLEM, assert_problem, bearer, movement_count

NASTY: list[Any] = ["\x00", "a\x00b", "\ud800", "x" * 5000, "", 2**31, 2**63, -(2**63) - 1, 10**30, -1, 1.5]
NASTY_JSON: list[Any] = [*NASTY, True, None, [], {}]
NASTY_FORM: list[Any] = ["a\x00b", "\ud800", 2**63, "x" * 5000]  # what the database itself refuses
# Ends the session the sweep runs on; event streams, which never end.
SKIPPED = ("/logout", "/events", "/sites/{site}/live")


def _arguments(day: Day) -> dict[str, Any]:
    """A value that names something real, per parameter name, so that one bad value is the only fault."""
    return {
        "site": "LYS",
        "sku": "SKU-FLOUR",
        "order_id": day.order_id,
        "list_id": day.flour_list,
        "task_id": day.flour_task,
        "username": PERSONAS["operator"].username,
    }


def _bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """A valid JSON body per API operation that takes one."""
    admin = PERSONAS["admin"]
    return {
        ("post", "/api/v1/auth/token"): {"username": admin.username, "password": admin.password},
        ("put", "/api/v1/products/{sku}"): {"name": "Farine T55", "pack_size": 10},
        ("post", "/api/v1/locations"): {"site": "LYS", "code": "Z-09-09", "zone": "Z", "pick_seq": 5},
        ("post", "/api/v1/movements"): {
            "kind": "receipt",
            "site": "LYS",
            "product": "SKU-FLOUR",
            "quantity": 1,
            "to": "QUAI-R1",
        },
        ("post", "/api/v1/destinations"): {"code": "MAG-Z", "name": "Magasin Z", "tier": 1, "min_units": 0},
        ("post", "/api/v1/orders"): {
            "site": "LYS",
            "destination": "MAG-A",
            "due_at": "2026-12-01T10:00:00+01:00",
            "lines": [{"product": "SKU-FLOUR", "quantity": 1}],
        },
        ("put", "/api/v1/orders/{order_id}"): {
            "destination": "MAG-A",
            "due_at": "2026-12-01T10:00:00+01:00",
            "lines": [{"product": "SKU-FLOUR", "quantity": 1}],
        },
        ("post", "/api/v1/dispatch-runs"): {"site": "LYS", "preview": True},
        ("post", "/api/v1/pick-tasks/{task_id}/confirm"): {"location": "A-01-01", "quantity": 10},
        ("post", "/api/v1/shipments"): {"site": "LYS", "destination": "MAG-A"},
    }


def _operations(schema: dict[str, Any], api: bool) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1") == api and not any(part in path for part in SKIPPED)
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _encoded(value: Any) -> str:
    return quote(str(value), safe="", errors="surrogatepass")


def _cases(operation: dict[str, Any], fields: list[str], for_parameters: list[Any], for_fields: list[Any]):
    """(parameters, body fields): one of them replaced by one bad value, the others left valid."""
    parameters = [p for p in operation.get("parameters", []) if p["in"] in {"path", "query"}]
    for value in for_parameters:
        for parameter in parameters:
            yield {parameter["name"]: value}, {}
    for value in for_fields:
        for field in fields:
            yield {}, {field: value}


def _url(path: str, operation: dict[str, Any], arguments: dict[str, Any], bad: dict[str, Any]) -> str:
    query = []
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            path = path.replace("{" + name + "}", _encoded(bad.get(name, arguments.get(name, 1))))
        elif parameter["in"] == "query" and name in bad:
            query.append(f"{name}={_encoded(bad[name])}")
    return path + ("?" + "&".join(query) if query else "")


class _Forms(HTMLParser):
    """The fields of every form of a page, by the address it posts to (the schema does not list them)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, set[str]] = {}
        self._action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form" and (named.get("method") or "").lower() == "post":
            self._action = (named.get("action") or "").split("?")[0]
            self.fields.setdefault(self._action, set())
        elif tag in {"input", "select", "textarea"} and self._action is not None:
            self.fields[self._action].add(named.get("name") or "")

    def close(self) -> None:
        super().close()
        for names in self.fields.values():
            names -= {"", "_csrf_token"}

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None


async def _form_fields(
    client: Any, schema: dict[str, Any], arguments: dict[str, Any]
) -> dict[str, list[str]]:
    forms = _Forms()
    for method, path, operation in _operations(schema, api=False):
        if method == "get":
            forms.feed((await client.get(_url(path, operation, arguments, {}))).text)
    forms.close()
    return {action: sorted(names) for action, names in forms.fields.items()}


@pytest.fixture
async def day(db) -> Day:
    return await dispatched_day(db)


async def test_the_api_answers_bad_values_with_problem_details_never_a_500(client, day):
    auth = await bearer(client, "admin")
    schema = (await client.get("/api/schema/openapi.json")).json()
    arguments, bodies = _arguments(day), _bodies()
    failures, calls = [], 0
    for method, path, operation in _operations(schema, api=True):
        body = bodies.get((method, path))
        assert body is not None or "requestBody" not in operation, f"no valid body for {method} {path}"
        for bad_parameters, bad_fields in _cases(operation, list(body or {}), NASTY_JSON, NASTY_JSON):
            url = _url(path, operation, arguments, bad_parameters)
            headers = {**auth, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            content = None if body is None else json.dumps({**body, **bad_fields})
            response = await client.request(method.upper(), url, content=content, headers=headers)
            calls += 1
            if response.status_code >= 500 or (
                response.status_code >= 400 and not response.headers["content-type"].startswith(PROBLEM)
            ):
                failures.append(f"{method} {url[:80]} {bad_fields!r:.60}: {response.status_code}")
    assert calls > 800  # the sweep really swept
    assert failures == []


async def test_pages_and_forms_answer_bad_values_with_a_message_never_a_500(client, day):
    p = PERSONAS["admin"]
    assert (await login(client, p.username, p.password)).status_code == 303
    schema = (await client.get("/api/schema/openapi.json")).json()
    arguments = _arguments(day)
    forms = await _form_fields(client, schema, arguments)
    # The day's order was reserved for, so its page offers no edit form: the edit posts the new-order form's
    # fields, and the version it was drawn from.
    forms.setdefault(f"/sites/LYS/orders/{day.order_id}/edit", [*forms["/sites/LYS/orders/new"], "version"])
    failures, calls = [], 0
    for method, path, operation in _operations(schema, api=False):
        fields = forms.get(_url(path, operation, arguments, {}), []) if method == "post" else []
        for bad_parameters, bad_fields in _cases(operation, fields, NASTY, NASTY_FORM):
            url = _url(path, operation, arguments, bad_parameters)
            for htmx in (False, True) if method == "get" else (True,):
                headers = {"HX-Request": "true"} if htmx else {}
                if method != "get":
                    headers |= {"X-CSRFToken": await csrf_token(client)}
                    headers |= {"Content-Type": "application/x-www-form-urlencoded"}
                values = dict.fromkeys(fields, "1") | bad_fields
                form_body = "&".join(f"{quote(k)}={_encoded(v)}" for k, v in values.items()) or None
                response = await client.request(method.upper(), url, content=form_body, headers=headers)
                calls += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{method} {url[:80]} htmx={htmx} {bad_fields!r:.60}: {response.status_code}"
                    )
    assert calls > 2000 and len(forms) > 10 and "line_quantity" in forms["/sites/LYS/orders/new"]
    assert failures == []


async def test_a_nul_character_is_refused_with_a_message_and_writes_nothing(client, db, day):
    auth = await bearer(client, "operator")
    before = await movement_count(db)
    response = await client.post(
        "/api/v1/movements",
        json={
            "kind": "receipt",
            "site": "LYS",
            "product": "SKU-FLOUR",
            "quantity": 5,
            "to": "QUAI-R1",
            "document": "BL\x00042",
        },
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert "null character" in assert_problem(response, 400)["detail"]
    assert await movement_count(db) == before


async def test_an_id_beyond_the_database_range_is_a_clear_400_in_french_too(client, day):
    auth = await bearer(client, "operator")
    response = await client.get(f"/api/v1/orders/{2**63}", headers=auth)
    assert (
        assert_problem(response, 400)["detail"] == "A number is too large or too small. Nothing was changed."
    )
    response = await client.get(f"/api/v1/orders/{2**63}", headers={**auth, "Accept-Language": "fr"})
    assert (
        assert_problem(response, 400)["detail"]
        == "Un nombre est trop grand ou trop petit. Rien n'a été modifié."
    )


async def test_the_user_search_answers_as_you_type(client, day):
    p = PERSONAS["admin"]
    assert (await login(client, p.username, p.password)).status_code == 303
    response = await client.get(
        "/admin/users", params={"q": PERSONAS["operator"].username[:3]}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200, response.text
    assert 'id="user-results"' in response.text and PERSONAS["operator"].username in response.text
    assert "<html" not in response.text


@pytest.mark.parametrize(
    ("statement", "value", "kind"),
    [
        ("SELECT CAST(:v AS text)", "a\x00b", Unstorable.TEXT),  # refused by PostgreSQL: 22021
        ("SELECT CAST(:v AS text)", "\ud800", Unstorable.TEXT),  # refused by asyncpg's encoder
        ("SELECT CAST(:v AS bigint)", 2**63, Unstorable.NUMBER),  # refused by asyncpg's encoder
        ("SELECT CAST(:v AS integer) + 1", 2**31 - 1, Unstorable.NUMBER),  # a sum: 22003
        ("SELECT 1 / CAST(:v AS integer)", 0, None),  # a fault of ours, not of the request
    ],
)
async def test_the_database_errors_that_mean_bad_input_are_told_apart(db, statement, value, kind):
    async with db.reads() as session:
        with pytest.raises(DBAPIError) as wrapped:
            await session.execute(text(statement), {"v": value})
        assert unstorable_value(wrapped.value) == kind
        pg = await driver(session)
        with pytest.raises(asyncpg.PostgresError) as raw:
            await pg.fetchval(statement.replace(":v", "$1"), value)
        assert unstorable_value(raw.value) == kind
