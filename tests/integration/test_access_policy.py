"""Walk every registered route as each role (and as nobody) and check the declared policy holds."""

import re

import pytest
from litestar.testing import AsyncTestClient

from app.domain.access import Role
from app.web.auth import LOCAL, PUBLIC
from tests.conftest import PERSONAS
from tests.helpers import CSRF_COOKIE, login

PATH_VALUES = {
    "username": "ghost",
    "request_id": "1",
    "file_path": "css/app.css",
    "path": "openapi.json",
    "site": "LYS",  # the operator's and the supervisor's site: the role decides, not the site
    "sku": "SKU-NONE",
    "code": "A-01-01",
    "batch_id": "1",
    "kind": "products",
    "list_id": "1",
    "task_id": "1",
    "shipment_id": "1",
    "run_id": "1",
    "order_id": "1",
}
SKIP = {"/logout"}
# Server-sent event streams never end: the walk checks that the guard refuses them to those it must; the
# browser tests (tests/e2e/test_live_boards.py) open them as the roles allowed to.
STREAMS = {"/sites/LYS/board/events", "/sites/LYS/live"}
UNFILLED = re.compile(r"\{[a-z_]+\}")  # a message whose {placeholder} was never filled
CREDENTIAL_ENDPOINTS = {
    "/login",
    "/api/v1/auth/token",
}  # walked last, on its own: it ends the session the walk relies on


def routes(app):
    """(method, concrete path, policy) for every handler the app serves."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            policy = handler.opt.get("access")
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m.group(1)], route.path)
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                yield method, path, policy


def test_every_route_declares_who_may_reach_it(app):
    served = {p for _m, p, _policy in routes(app)}
    assert served >= STREAMS  # the streams spared below are real routes
    undeclared = [(m, p) for m, p, policy in routes(app) if policy is None]
    assert undeclared == []


async def _request(client, method, path, bearer=None):
    headers = {"x-csrftoken": client.cookies.get(CSRF_COOKIE, "")}
    if path.startswith("/api/"):
        # The API never reads the session cookie: it is reached with the persona's bearer token.
        auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return await client.request(method, path, json={}, headers=auth, follow_redirects=False)
    return await client.request(method, path, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("who", ["anonymous", "operator", "supervisor", "admin"])
async def test_each_role_reaches_exactly_what_its_policy_allows(app, who):
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        await client.get("/login")
        role = None
        bearer = None
        if who != "anonymous":
            persona = PERSONAS[who]
            assert (await login(client, persona.username, persona.password)).status_code == 303
            role = Role(persona.role)
            token = await client.post(
                "/api/v1/auth/token", json={"username": persona.username, "password": persona.password}
            )
            bearer = token.json()["access_token"]
        checked = 0
        for method, path, policy in routes(app):
            if path in SKIP or policy == LOCAL:
                continue
            allowed = policy == PUBLIC or (role is not None and role in policy)
            if allowed and path in STREAMS:
                continue
            response = await _request(client, method, path, bearer)
            denied = response.status_code in (401, 403) or (
                response.status_code == 303 and response.headers["location"].startswith("/login")
            )
            if path in CREDENTIAL_ENDPOINTS:
                denied = False  # public; empty credentials are answered 400/401 by the handler, not the guard
            assert denied is not allowed, f"{who} {method} {path} -> {response.status_code}"
            if response.headers.get("content-type", "").startswith("text/html"):
                assert not UNFILLED.search(response.text), f"unfilled placeholder on {method} {path}"
            checked += 1
        assert checked >= 10
