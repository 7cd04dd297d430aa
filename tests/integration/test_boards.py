"""Live boards through the real routes and a real PostgreSQL: the panels' figures, who may see what, and
the machinery under them (events published after commit only, per site, a listener that survives the
loss of its connection)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from app.db import live
from app.db.live import Topic
from app.db.models import Site
from app.services.picking import PickConfirmation, confirm_pick, take_pick_list
from app.web.live import LiveHub
from tests.integration.dispatch_fixtures import make_order
from tests.integration.picking_fixtures import dispatched_day, persona_actor, take
from tests.integration.test_operations import sign_in, visible_text


@pytest.fixture
async def day(db):
    return await dispatched_day(db)


def compact(html: str) -> str:
    return " ".join(visible_text(html).split())


def panel(html: str, name: str) -> str:
    found = re.search(rf'<section[^>]*id="panel-{name}"[^>]*>(.*?)</section>', html, re.S)
    assert found, f"no {name} panel"
    return compact(found.group(1))


async def site_id(db, code: str) -> int:
    async with db.reads() as s:
        return int(await s.scalar(text("SELECT id FROM sites WHERE code = :c"), {"c": code}))


# ---------------------------------------------------------------- the panels


async def test_the_board_shows_pipeline_pickers_shortages_and_activity_of_the_site(client, db, day):
    actor, name = await persona_actor(db, "operator")
    now = datetime.now(UTC)
    await take_pick_list(
        db, day.flour_list, site_ids=None, actor=actor, actor_name=name, idempotency_key="t1", now=now
    )
    short = PickConfirmation(location="A-01-01", product="SKU-FLOUR", lot=None, quantity=15)
    await confirm_pick(db, day.flour_task, short, site_ids=None, actor=actor, idempotency_key="p1", now=now)

    await sign_in(client, "supervisor")
    page = await client.get("/sites/LYS/board")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    # One stream for the whole board, each panel swapped by the event named after it.
    assert 'sse-connect="/sites/LYS/board/events"' in html
    for name_ in ("pipeline", "pickers", "late", "shortages", "throughput", "activity"):
        assert f'sse-swap="{name_}"' in html
    assert "1 commande en cours" in panel(html, "pipeline")
    pickers = panel(html, "pickers")
    assert "Olivia Opérateur" in pickers and "A-01-01" in pickers  # where she picked last
    # 20 flour asked, 15 found: 5 short picked for MAG-A.
    shortages = panel(html, "shortages")
    assert "SKU-FLOUR" in shortages and "MAG-A" in shortages and re.search(r"\b5\b", shortages)
    throughput = panel(html, "throughput")
    assert "Lignes préparées aujourd'hui : 1" in throughput
    activity = panel(html, "activity")
    assert "Réception" in activity and "SKU-YOG" in activity and "Répartition" in activity


async def test_late_orders_are_highlighted_with_how_late_they_are(client, db, day):
    async with db.transaction() as s:
        await s.execute(
            text("UPDATE dispatch_orders SET due_at = :due WHERE id = :id"),
            {"due": datetime.now(UTC) - timedelta(hours=2, minutes=5), "id": day.order_id},
        )
    await sign_in(client, "supervisor")
    html = (await client.get("/sites/LYS/board")).text
    late = panel(html, "late")
    assert "en retard de 2 h 05" in late or "en retard de 2 h 06" in late
    assert "1 en retard" in panel(html, "pipeline")


async def test_the_polling_fallback_returns_every_panel(client, db, day):
    await sign_in(client, "supervisor")
    page = await client.get("/sites/LYS/board/panels", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert page.text.count('class="card board-panel') == 6
    assert "<html" not in page.text


async def test_the_wall_screen_has_no_navigation_and_rotates_between_the_users_sites(client, db, day):
    await sign_in(client, "supervisor")
    page = await client.get("/sites/LYS/board/wall?rotate=LYS,LIL&every=45")
    assert page.status_code == 200
    assert 'class="mainnav"' not in page.text and 'class="wall"' in page.text
    following = 'data-rotate-to="/sites/LIL/board/wall?rotate=LYS%2CLIL&amp;every=45" data-rotate-after="45"'
    assert following in page.text


# ---------------------------------------------------------------- who sees what


@pytest.mark.parametrize(
    ("role", "url", "status"),
    [
        ("operator", "/sites/LYS/board", 403),  # boards are the supervisors'
        ("operator", "/sites/LYS/board/events", 403),
        ("lille_operator", "/sites/LYS/live?topic=picking", 403),  # not one of their sites
        ("supervisor", "/sites/XXX/board/events", 404),
    ],
)
async def test_streams_and_boards_are_refused_outside_a_persons_scope(client, day, role, url, status):
    await sign_in(client, role)
    assert (await client.get(url)).status_code == status


async def test_a_wall_screen_cannot_rotate_through_a_site_that_is_not_the_users(client, db, day):
    await sign_in(client, "supervisor")  # LYS and LIL
    async with db.transaction() as s:
        s.add(Site(code="PAR", name="Paris"))
    assert (await client.get("/sites/LYS/board/wall?rotate=LYS,PAR")).status_code == 403


# ---------------------------------------------------------------- the machinery


async def listening(db_urls, **options) -> LiveHub:
    hub = LiveHub(db_urls.libpq, **options)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 10)
    return hub


async def test_only_committed_changes_reach_subscribers_and_only_those_of_their_sites(db, db_urls):
    lyon, lille = await site_id(db, "LYS"), await site_id(db, "LIL")
    hub = await listening(db_urls)
    lyon_board, lille_board = hub.subscribe({lyon}), hub.subscribe({lille})
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as s:
                live.changed(s, lyon, Topic.STOCK)
                raise RuntimeError("rolled back")
        async with db.transaction() as s:
            live.changed(s, lille, Topic.ORDERS, Topic.PICKING)
        assert await lille_board.wait(5) == {(lille, Topic.ORDERS), (lille, Topic.PICKING)}
        assert await lyon_board.wait(0.5) == set()  # neither the rollback nor another site's change
    finally:
        lyon_board.close()
        lille_board.close()
        await hub.stop()
    assert hub.subscribers == 0


async def test_a_burst_of_changes_is_one_notify_per_interval(db, db_urls):
    lyon = await site_id(db, "LYS")
    hub = await listening(db_urls)
    board = hub.subscribe({lyon})
    try:
        sent_before = db.live.sent
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(30):
            async with db.transaction() as s:
                live.changed(s, lyon, Topic.STOCK)
        await db.live.flush()
        intervals = (loop.time() - started) / db.live.interval
        assert db.live.sent - sent_before <= intervals + 2 < 30  # one per interval, not one per commit
        assert await board.wait(5) == {(lyon, Topic.STOCK)}
    finally:
        board.close()
        await hub.stop()


async def test_the_listener_comes_back_after_its_connection_is_killed_and_boards_redraw_all(db, db_urls):
    lyon = await site_id(db, "LYS")
    losses: list[bool] = []

    async def on_lost() -> None:  # the app drops its pooled connections here (a restart killed them)
        losses.append(hub.connected.is_set())

    hub = await listening(db_urls, retry_every=0.2, on_lost=on_lost)
    board = hub.subscribe({lyon})
    try:
        killer = await asyncpg.connect(db_urls.libpq)
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", hub.backend_pid)
        finally:
            await killer.close()
        redraw = await board.wait(10)  # after the reconnect: every topic, since events may have been missed
        assert redraw == {(lyon, topic) for topic in Topic}
        assert hub.reconnects == 1 and hub.connected.is_set()
        assert losses == [False]  # told once, as the loss was noticed, before listening again
        async with db.transaction() as s:
            live.changed(s, lyon, Topic.DISPATCH)
        assert await board.wait(5) == {(lyon, Topic.DISPATCH)}
    finally:
        board.close()
        await hub.stop()


async def test_the_watchdog_replaces_a_listener_that_stopped_hearing(db, db_urls):
    """A half-open connection raises nothing: only the unanswered ping gives it away."""
    hub = await listening(db_urls, check_every=0.3, answer_within=0.5, retry_every=0.1)
    try:
        first = hub.backend_pid
        deaf = hub.connection
        assert deaf is not None
        await deaf.remove_listener(hub.ping_channel, hub.on_pong)  # it no longer hears its own ping
        for _ in range(100):
            if hub.reconnects:
                break
            await asyncio.sleep(0.05)
        assert hub.reconnects == 1
        await asyncio.wait_for(hub.connected.wait(), 5)
        assert hub.backend_pid != first
    finally:
        await hub.stop()


# ---------------------------------------------------------------- presence


async def test_a_runs_page_shows_who_picks_each_list_and_follows_picking_live(client, db, day):
    await take(db, day.flour_list, "operator", now=datetime.now(UTC) - timedelta(minutes=4, seconds=5))
    async with db.reads() as s:
        run_id = await s.scalar(text("SELECT max(id) FROM dispatch_runs"))
    await sign_in(client, "supervisor")
    page = await client.get(f"/sites/LYS/dispatch/runs/{run_id}")
    assert 'sse-connect="/sites/LYS/live?topic=picking"' in page.text
    assert "Olivia Opérateur prépare cette liste depuis 4 min" in compact(page.text)
    lists = await client.get(f"/sites/LYS/dispatch/runs/{run_id}?part=lists", headers={"HX-Request": "true"})
    assert lists.text.lstrip().startswith('<div id="run-lists"')
    assert "Olivia Opérateur prépare cette liste depuis 4 min" in compact(lists.text)


# ---------------------------------------------------------------- drawing once per change


async def test_a_panel_is_drawn_once_per_change_and_fresh_while_the_listener_is_down(db, day):
    from app.db.queries.boards import board_site
    from app.routes.boards import PANEL_BY_NAME, BoardPanels
    from app.web import i18n
    from app.web.templating import make_environment

    i18n.load_catalogs()
    hub = LiveHub("postgresql://never-started")
    panels = BoardPanels(db, make_environment(), hub, lambda *_a, **_k: "/link")
    async with db.reads() as s:
        lyon = await board_site(s, "LYS")
    assert lyon is not None
    pipeline, now = PANEL_BY_NAME["pipeline"], datetime.now(UTC)

    def drafts(html: str) -> str:
        found = re.search(r'data-figure="orders-draft">(\d+)<', html)
        assert found
        return found.group(1)

    async def new_draft() -> None:  # straight into the tables: no event is published
        await make_order(db, lyon.id, day.destination_id, [("SKU-FLOUR", 1)], priority=2, state="draft")

    hub.connected.set()  # listening: drawings are kept until their topics change
    hub.deliver({(lyon.id, Topic.ORDERS)})  # a change that leaves this panel as it was
    unchanged = await panels.draw(lyon, pipeline, "fr", now)
    first = await panels.draw(lyon, pipeline, "fr", now)
    assert first is unchanged
    hub.deliver({(lyon.id, Topic.ORDERS)})
    redrawn = await panels.draw(lyon, pipeline, "fr", now)
    assert redrawn.version != first.version and redrawn.event is first.event  # no viewer is sent it again
    first = redrawn
    assert drafts(first.html) == "0"
    assert first.event.startswith(b"event: pipeline\r\ndata: ") and first.event.endswith(b"\r\n\r\n")
    await new_draft()
    assert await panels.draw(lyon, pipeline, "fr", now) is first  # one drawing serves every board
    hub.deliver({(lyon.id, Topic.ORDERS)})
    fresh = await panels.draw(lyon, pipeline, "fr", now)
    assert fresh.version != first.version and drafts(fresh.html) == "1"

    hub.connected.clear()  # deaf (reconnecting): no kept drawing can be trusted to be current
    await new_draft()
    assert drafts((await panels.draw(lyon, pipeline, "fr", now)).html) == "2"
