"""The supervisor's dispatch screen: preview (page or fragment), compare, commit once, follow the run."""

import re
import threading
from datetime import UTC, datetime

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text

from app.asgi import create_app
from app.db.models import DispatchRun
from app.services.jobs import JOB_BODIES, run_request
from app.settings import load_settings
from tests.conftest import TEST_ENV
from tests.helpers import login, post_form, threads_running
from tests.integration.dispatch_fixtures import make_worked_example, receive
from tests.integration.stock_fixtures import make_catalog
from tests.integration.test_stock_pages import rows

HX = {"HX-Request": "true"}
BASE = "https://testserver.local"


@pytest.fixture
async def lyon(db):
    """The worked example of PRODUCT.md at LYS."""
    site = (await make_catalog(db)).site_id
    await make_worked_example(db, site, stock=((120, "A-01-01"),))
    return site


@pytest.fixture
async def supervisor(client, personas):
    p = personas["supervisor"]
    await login(client, p.username, p.password)
    return client


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


async def test_the_dispatch_page_shows_the_open_demand_and_the_run_options(lyon, supervisor):
    page = await supervisor.get("/sites/LYS/dispatch/")
    assert page.status_code == 200
    html = page.text
    assert 'name="policy"' in html and 'name="rounding"' in html and 'name="compare"' in html
    assert re.search(r"149", html)  # units needed
    assert "<html" in html


async def test_a_preview_swaps_in_as_a_fragment_and_explains_every_short_line(lyon, supervisor, db):
    answer = await supervisor.get(
        "/sites/LYS/dispatch/preview",
        params={"policy": "proportional", "rounding": "largest_remainder"},
        headers=HX,
    )
    assert answer.status_code == 200
    html = answer.text
    assert "<html" not in html and html.lstrip().startswith('<section id="preview"')
    table = [r for r in rows(html) if r and r[0].startswith("SKU-WATER")]
    # B, C and D are short (A is served in full and filtered out by default); quotas 5.76, 7.68, 2.56.
    assert [(r[1].split()[0], r[6], r[8]) for r in table] == [
        ("C", "7,68", "8"),
        ("B", "5,76", "6"),
        ("D", "2,56", "2"),
    ]
    async with db.reads() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 0  # a preview writes nothing


async def test_a_preview_as_a_full_page_can_be_reloaded(lyon, supervisor):
    page = await supervisor.get("/sites/LYS/dispatch/preview", params={"policy": "even"})
    assert page.status_code == 200 and "<html" in page.text and 'id="commit-form"' in page.text


async def test_two_policies_side_by_side(lyon, supervisor, monkeypatch):
    """Both on one reading of demand and stock: a comparison compares rules, never two moments."""
    from app.services import dispatch_runs

    readings = threads_running(monkeypatch, dispatch_runs, "open_demand")
    html = (
        await supervisor.get(
            "/sites/LYS/dispatch/preview",
            params={"policy": "proportional", "compare": "minimums_first", "show": "all"},
            headers=HX,
        )
    ).text
    compared = {r[0].split()[0]: (r[2].split()[0], r[3].split()[0]) for r in rows(html) if len(r) == 5}
    assert compared == {"A": ("24", "24"), "B": ("36", "36"), "C": ("48", "42"), "D": ("12", "18")}
    assert len(readings) == 1


async def test_a_preview_that_serves_nothing_says_why_instead_of_offering_a_commit(db, supervisor):
    """No stock at all: every line is short, and committing would only record an empty run."""
    site = (await make_catalog(db)).site_id
    await make_worked_example(db, site, stock=())
    html = (await supervisor.get("/sites/LYS/dispatch/preview", headers=HX)).text
    assert 'id="commit-form"' not in html and 'id="nothing-to-commit"' in html
    assert "rien à valider tant que du stock" in html  # the site's language
    in_english = {**HX, "Accept-Language": "en"}
    english = (await supervisor.get("/sites/LYS/dispatch/preview", headers=in_english)).text
    assert "nothing to commit until stock is received" in english
    await receive(db, site, "SKU-WATER", 6, "A-01-01")  # one pack: now there is something to reserve
    html = (await supervisor.get("/sites/LYS/dispatch/preview", headers=HX)).text
    assert 'id="commit-form"' in html and 'id="nothing-to-commit"' not in html


async def test_an_unknown_policy_is_refused_with_the_allowed_words(lyon, supervisor):
    answer = await supervisor.get("/sites/LYS/dispatch/preview", params={"policy": "lottery"}, headers=HX)
    assert answer.status_code == 422 and "lottery" in answer.text


async def test_commit_from_the_preview_reserves_once_and_opens_the_run(lyon, supervisor, db):
    preview = (await supervisor.get("/sites/LYS/dispatch/preview", headers=HX)).text
    form = {name: hidden(preview, name) for name in ("policy", "rounding", "spill", "inputs", "key")}
    answer = await post_form(supervisor, "/sites/LYS/dispatch/runs", form, headers=HX)
    again = await post_form(supervisor, "/sites/LYS/dispatch/runs", form, headers=HX)  # a double tap
    assert answer.status_code == 200 and answer.headers["hx-redirect"] == again.headers["hx-redirect"]
    run_page = await supervisor.get(answer.headers["hx-redirect"])
    assert run_page.status_code == 200
    async with db.reads() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 1
        assert await s.scalar(text("SELECT sum(reserved) FROM stock_balances")) == 120
    assert "run-committed" in run_page.text
    explained = {r[1].split()[0]: r[9] for r in rows(run_page.text) if len(r) == 12}
    assert explained == {"B": "36", "C": "48", "D": "12"}  # short lines, as the preview showed them


async def test_a_commit_after_the_stock_changed_asks_for_a_new_preview(lyon, supervisor, db):
    preview = (await supervisor.get("/sites/LYS/dispatch/preview", headers=HX)).text
    form = {name: hidden(preview, name) for name in ("policy", "rounding", "spill", "inputs", "key")}
    await receive(db, lyon, "SKU-WATER", 6, "A-01-02")
    answer = await post_form(supervisor, "/sites/LYS/dispatch/runs", form, headers=HX)
    assert answer.status_code == 409
    assert "/sites/LYS/dispatch/preview?" in answer.text
    async with db.reads() as s:
        assert await s.scalar(select(func.count()).select_from(DispatchRun)) == 0


async def test_a_queued_run_shows_its_progress_until_the_worker_commits_it(lyon, db_urls, personas, db):
    settings = load_settings({**TEST_ENV, "DISPATCH_INLINE_MAX_LINES": "0"})  # every run goes to the worker
    async with AsyncTestClient(create_app(settings, database_url=db_urls.libpq), base_url=BASE) as client:
        await login(client, personas["supervisor"].username, personas["supervisor"].password)
        preview = (await client.get("/sites/LYS/dispatch/preview", headers=HX)).text
        form = {name: hidden(preview, name) for name in ("policy", "rounding", "spill", "inputs", "key")}
        run_url = (await post_form(client, "/sites/LYS/dispatch/runs", form, headers=HX)).headers[
            "hx-redirect"
        ]
        page = await client.get(run_url)
        assert 'id="run-progress"' in page.text and 'hx-trigger="every 500ms"' in page.text
        poll = await client.get(run_url + "/progress", headers=HX)
        assert poll.status_code == 200 and '<progress max="100" value="5"' in poll.text
        async with db.transaction() as s:  # as the worker reports it, half of the lines planned
            total = await s.scalar(
                text("""UPDATE dispatch_runs SET status = 'running', phase = 'allocating',
                        progress_done = progress_total / 2 RETURNING progress_total""")
            )
        poll = await client.get(run_url + "/progress", headers=HX)
        assert f'<progress max="100" value="{15 + 70 * (total // 2) // total}"' in poll.text
        assert f"{total // 2} sur {total} lignes réparties" in poll.text
        poll = await client.get(run_url + "/progress", headers={**HX, "Accept-Language": "en"})
        assert f"{total // 2} of {total} lines planned" in poll.text
        async with db.reads() as s:
            request_id = await s.scalar(text("SELECT id FROM job_requests WHERE function = 'dispatch_run'"))
        await run_request(
            db, request_id, JOB_BODIES, worker_id="w", now=datetime.now(UTC)
        )  # the worker's part
        done = await client.get(run_url + "/progress", headers=HX)
        assert done.headers.get("hx-redirect") == run_url  # polling ends: the page reloads with the result


async def test_operators_cannot_reach_the_dispatch_screen(lyon, client, personas):
    p = personas["operator"]
    await login(client, p.username, p.password)
    assert (await client.get("/sites/LYS/dispatch/")).status_code == 403


async def test_the_preview_screen_filters_and_sums_off_the_event_loop(lyon, supervisor, monkeypatch):
    """A large site's preview explains 100,000 lines: filtering and summing them never holds the loop."""
    from app.routes import dispatch_view

    selected_in = threads_running(monkeypatch, dispatch_view, "_select")
    answer = await supervisor.get("/sites/LYS/dispatch/preview", params={"policy": "even"}, headers=HX)
    assert answer.status_code == 200 and "SKU-WATER" in answer.text
    assert len(selected_in) == 1 and threading.get_ident() not in selected_in


async def test_a_run_cut_off_at_a_day_takes_only_the_orders_due_by_its_end(lyon, supervisor, db):
    async with db.transaction() as s:  # A's order is due two days later
        await s.execute(
            text("""UPDATE dispatch_orders SET due_at = due_at + interval '2 days'
                    WHERE destination_id = (SELECT id FROM destinations WHERE code = 'A')""")
        )
    params = {"policy": "proportional", "due_by": "2026-11-25"}
    preview = (await supervisor.get("/sites/LYS/dispatch/preview", params=params, headers=HX)).text
    assert "Commandes dues jusqu&#39;au 25/11/2026 23:59 seulement." in preview
    assert hidden(preview, "due_by") == "2026-11-25"
    form = {
        name: hidden(preview, name) for name in ("policy", "rounding", "spill", "inputs", "key", "due_by")
    }
    answer = await post_form(supervisor, "/sites/LYS/dispatch/runs", form, headers=HX)
    assert answer.status_code == 200, answer.text
    run_page = (await supervisor.get(answer.headers["hx-redirect"])).text
    assert "Commandes dues jusqu" in run_page and "25/11/2026 23:59" in run_page
    history = (await supervisor.get("/sites/LYS/dispatch/")).text
    assert "Commandes dues jusqu&#39;au 25/11/2026 23:59" in history
    async with db.reads() as s:
        served = (
            (
                await s.execute(
                    text("""SELECT d.code FROM pick_tasks t
                        JOIN dispatch_order_lines l ON l.id = t.order_line_id
                        JOIN dispatch_orders o ON o.id = l.order_id
                        JOIN destinations d ON d.id = o.destination_id
                        GROUP BY d.code ORDER BY d.code""")
                )
            )
            .scalars()
            .all()
        )
    assert served == ["B", "C", "D"]  # A, due later, had no share
    bad = await supervisor.get("/sites/LYS/dispatch/preview", params={"due_by": "25/13/2026"}, headers=HX)
    assert bad.status_code == 422 and "Saisissez" in bad.text
