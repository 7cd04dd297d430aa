"""Dispatch runs through the JSON API: the worked example, commit once, stale previews, access."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from app.asgi import create_app
from app.services.jobs import JOB_BODIES, run_request
from app.settings import load_settings
from tests.conftest import TEST_ENV
from tests.helpers import threads_running
from tests.integration.test_api_stock import assert_problem, bearer
from tests.integration.test_dispatch_pages import BASE, lyon  # noqa: F401 - the worked example at LYS

RUNS = "/api/v1/dispatch-runs"


def packs_by_destination(answer: dict) -> dict[str, int]:
    return {a["destination"]: a["packs"] for a in answer["allocations"]}


async def test_the_worked_example_through_the_api(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    answer = await client.post(RUNS, json={"site": "LYS"}, headers=auth)
    assert answer.status_code == 200
    body = answer.json()
    assert packs_by_destination(body) == {"A": 4, "B": 6, "C": 8, "D": 2}
    explained = {
        a["destination"]: (a["quota_packs"], a["rounding_step"], a["reason"]) for a in body["allocations"]
    }
    assert explained["B"] == (5.76, 1, "remainder_plus_one")
    assert explained["D"] == (2.56, 0, "proportional_share")
    assert {(s["destination"], s["units"]) for s in body["shortages"]} == {("B", 9), ("C", 12), ("D", 8)}
    assert sum(r["units"] for r in body["reservations"]) == 120
    minimums = await client.post(RUNS, json={"site": "LYS", "policy": "minimums_first"}, headers=auth)
    assert packs_by_destination(minimums.json()) == {"A": 4, "B": 6, "C": 7, "D": 3}


async def test_a_commit_confirms_its_preview_once_and_returns_the_explanation(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    inputs = (await client.post(RUNS, json={"site": "LYS"}, headers=auth)).json()["inputs"]
    body = {"site": "LYS", "preview": False, "expected_inputs": inputs}
    headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
    first = await client.post(RUNS, json=body, headers=headers)
    again = await client.post(RUNS, json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    run = first.json()
    assert run["status"] == "committed" and run["summary"]["units_allocated"] == 120
    assert {e["destination"]: e["units"] for e in run["explanations"]} == {"A": 24, "B": 36, "C": 48, "D": 12}
    shown = await client.get(first.headers["location"], headers=auth)
    assert shown.status_code == 200 and shown.json()["explanations_total"] == 4
    listed = await client.get(RUNS, params={"site": "LYS"}, headers=auth)
    assert [r["id"] for r in listed.json()] == [run["id"]]


async def test_a_queued_run_reports_its_progress_until_the_worker_commits_it(lyon, db_urls, db):  # noqa: F811
    settings = load_settings({**TEST_ENV, "DISPATCH_INLINE_MAX_LINES": "0"})  # every run goes to the worker
    async with AsyncTestClient(create_app(settings, database_url=db_urls.libpq), base_url=BASE) as client:
        auth = await bearer(client, "supervisor")
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        queued = await client.post(RUNS, json={"site": "LYS", "preview": False}, headers=headers)
        assert queued.status_code == 202, queued.text
        shown = await client.get(queued.headers["location"], headers=auth)
        run = shown.json()
        assert run["status"] == "queued" and run["progress"] == {"phase": "queued", "lines": 4, "planned": 0}
        async with db.reads() as s:
            request_id = await s.scalar(text("SELECT id FROM job_requests WHERE function = 'dispatch_run'"))
        await run_request(db, request_id, JOB_BODIES, worker_id="w", now=datetime.now(UTC))
        run = (await client.get(queued.headers["location"], headers=auth)).json()
        assert run["status"] == "committed" and run["summary"]["units_allocated"] == 120
        assert run["progress"] == {"phase": "committed", "lines": 4, "planned": 4}


async def test_a_commit_on_a_stale_preview_is_a_409_problem(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    body = {"site": "LYS", "preview": False, "expected_inputs": "0" * 64}
    answer = await client.post(RUNS, json=body, headers={**auth, "Idempotency-Key": "k1"})
    assert_problem(answer, 409)
    assert "preview" in answer.json()["detail"]


async def test_a_commit_needs_an_idempotency_key(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    answer = await client.post(RUNS, json={"site": "LYS", "preview": False}, headers=auth)
    assert_problem(answer, 422)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"site": "LYS", "policy": "lottery"}, 400),
        ({"site": "LYS", "colour": "red"}, 400),
        ({"site": "NOWHERE"}, 422),
    ],
)
async def test_malformed_requests_are_problems(client, lyon, body, status):  # noqa: F811
    auth = await bearer(client, "supervisor")
    assert_problem(await client.post(RUNS, json=body, headers=auth), status)


async def test_operators_may_not_run_dispatch(client, lyon):  # noqa: F811
    auth = await bearer(client, "operator")
    assert_problem(await client.post(RUNS, json={"site": "LYS"}, headers=auth), 403)


async def test_an_unknown_run_is_a_404(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    assert_problem(await client.get(f"{RUNS}/999999", headers=auth), 404)


async def test_a_preview_answer_is_built_and_encoded_off_the_event_loop(client, lyon, monkeypatch):  # noqa: F811
    """At 100,000 lines the answer is seconds of CPU and 35 MB of JSON: never on the event loop."""
    from app.routes import api_dispatch

    built_in = threads_running(monkeypatch, api_dispatch, "preview_answer")
    auth = await bearer(client, "supervisor")
    answer = await client.post(RUNS, json={"site": "LYS"}, headers=auth)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert packs_by_destination(answer.json()) == {"A": 4, "B": 6, "C": 8, "D": 2}
    assert len(built_in) == 1 and threading.get_ident() not in built_in


async def test_a_committed_run_is_undone_once_through_the_api(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    body = {"site": "LYS", "preview": False}
    run = (await client.post(RUNS, json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex})).json()
    assert run["undone"] is None
    url = f"{RUNS}/{run['id']}/undo"
    assert assert_problem(await client.post(url, headers=auth), 422)["field"] == "Idempotency-Key"
    operator = await bearer(client, "operator")
    assert_problem(await client.post(url, headers={**operator, "Idempotency-Key": "u-0"}), 403)
    undone = await client.post(url, headers={**auth, "Idempotency-Key": "u-1"})
    assert undone.status_code == 200, undone.text
    figures = undone.json()["undone"]
    assert (figures["units"], figures["orders"], figures["lists_kept"]) == (120, 4, 0)
    assert figures["tasks"] >= 4 and figures["lists_cancelled"] >= 1
    assert (await client.post(url, headers={**auth, "Idempotency-Key": "u-1"})).json() == undone.json()
    again = assert_problem(await client.post(url, headers={**auth, "Idempotency-Key": "u-2"}), 409)
    assert again["run"] == run["id"]
    assert (await client.get(f"{RUNS}/{run['id']}", headers=auth)).json()["undone"] == figures
    assert_problem(await client.post(f"{RUNS}/999999/undo", headers={**auth, "Idempotency-Key": "u-3"}), 404)


async def test_a_run_cut_off_through_the_api_keeps_its_cut_off(client, lyon):  # noqa: F811
    auth = await bearer(client, "supervisor")
    early = {"site": "LYS", "due_by": "2020-01-01T00:00:00+01:00"}  # before every order: nothing to share
    preview = (await client.post(RUNS, json=early, headers=auth)).json()
    assert (preview["summary"]["lines"], preview["allocations"]) == (0, [])
    assert_problem(
        await client.post(RUNS, json={**early, "due_by": "2020-01-01T00:00:00"}, headers=auth), 400
    )
    body = {"site": "LYS", "preview": False, "due_by": "2099-01-01T00:00:00+01:00"}
    run = (await client.post(RUNS, json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex})).json()
    assert (run["status"], run["due_by"], run["summary"]["units_allocated"]) == (
        "committed",
        "2098-12-31T23:00:00+00:00",
        120,
    )
