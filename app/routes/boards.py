"""Live boards: the supervisors' view of a site, redrawn within a second of any change, from any process.

A board is six panels, each drawn from one named query (app/db/queries/boards.py) by its own partial
(boards/_<panel>.html). The page opens one server-sent-event stream; when a topic of the site changes
(app/db/live.py), the panels drawn from that topic are redrawn and pushed. The boards of a site in
one language share one feed (app/web/live.py, `Feed`): its producer task draws each changed panel
once (`BoardPanels`) and publishes one chunk; each open board only wakes and sends it, so a thousand
wall screens cost one drawing and a thousand sends per change. Panels that show durations ("idle for
12 min") are redrawn every `TICK_SECONDS` as well. When the stream cannot open (a proxy blocking it),
app.js polls the panels every BOARD_POLL_SECONDS instead.

Pick-list pages need figures per person (their own lists, their buttons), so their stream carries
only the topic's name and the page fetches its own fragment (`LiveController`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from jinja2 import Environment
from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Redirect, ServerSentEventMessage, Stream, Template
from markupsafe import Markup
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.live import Change, Topic
from app.db.queries import boards as q
from app.db.session import Database
from app.domain.access import EVERYONE, SUPERVISORS
from app.routes.common import own_site, principal_of, to_first_site
from app.web import i18n
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.live import Feed, LiveHub, Produce
from app.web.templating import page

TICK_SECONDS = 30
RETRY_SECONDS = 1.0
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DBAPIError)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    name: str
    topics: tuple[Topic, ...]  # a fixed order: the drawing's version lists their change counts in it
    ticks: bool  # shows durations or "late": redrawn every TICK_SECONDS even when nothing changed
    read: Callable[[AsyncSession, q.BoardSite, datetime], Awaitable[Any]]
    # At most one drawing per `pace` seconds for the live boards: a panel whose topic changes all day long
    # (the activity feed under a stream of receipts) would otherwise be sent to every board 4 times a
    # second, which nobody reads and which is most of what the boards cost (bench/README.md, "Boards").
    pace: float = 0.0


PANELS: tuple[Panel, ...] = (
    Panel("pipeline", (Topic.ORDERS,), True, lambda s, site, now: q.pipeline(s, site.id, now)),
    Panel("pickers", (Topic.PICKING,), True, q.pickers),
    Panel("late", (Topic.ORDERS,), True, lambda s, site, now: q.late_orders(s, site.id, now)),
    Panel(
        "shortages",
        (Topic.ORDERS, Topic.PICKING, Topic.DISPATCH),
        False,
        lambda s, site, now: q.shortages(s, site.id),
    ),
    Panel("throughput", (Topic.PICKING, Topic.DISPATCH), True, q.throughput),
    Panel(
        "activity",
        (Topic.STOCK, Topic.DISPATCH),
        False,
        lambda s, site, now: q.activity(s, site.id),
        pace=1.0,
    ),
)
PANEL_BY_NAME = {panel.name: panel for panel in PANELS}

Version = tuple[Any, ...]


@dataclass(frozen=True)
class Drawing:
    """A panel as drawn for one version of its inputs: its HTML, and the same as a ready-made SSE event.

    The event is encoded once per drawing, not once per viewer: with a thousand boards open, encoding
    and sending are what a change costs (bench/README.md, "Boards").
    """

    version: Version
    html: Markup
    event: bytes


class BoardPanels:
    """Draws panels, keeping the last drawing of each (site, panel, language) until its inputs change."""

    def __init__(self, db: Database, env: Environment, hub: LiveHub, url_for: Callable[..., str]) -> None:
        self.db, self.env, self.hub, self.url_for = db, env, hub, url_for
        self._drawn: dict[tuple[int, str, str], Drawing] = {}
        self._drawing: dict[tuple[int, str, str, Version], asyncio.Task[Drawing]] = {}

    def version(self, site: q.BoardSite, panel: Panel, now: datetime) -> Version:
        versions = self.hub.versions
        changes = tuple(versions[(site.id, topic)] for topic in panel.topics)
        tick = int(now.timestamp() // TICK_SECONDS) if panel.ticks else 0
        return (self.hub.epoch, changes, tick)

    async def draw(self, site: q.BoardSite, panel: Panel, locale: str, now: datetime) -> Drawing:
        version = self.version(site, panel, now)
        if not self.hub.connected.is_set():  # deaf to changes for now: a kept drawing may be stale
            return await self._draw(site, panel, locale, now, (*version, "uncached"))
        key = (site.id, panel.name, locale)
        drawn = self._drawn.get(key)
        if drawn is not None and drawn.version == version:
            return drawn
        task = self._drawing.get((*key, version))
        if task is None:
            task = asyncio.get_running_loop().create_task(self._redraw(site, panel, locale, now, version))
            self._drawing[(*key, version)] = task
            task.add_done_callback(lambda _t: self._drawing.pop((*key, version), None))
        # Shielded: a viewer who leaves mid-drawing must not cancel it for the others waiting on it.
        return await asyncio.shield(task)

    async def _redraw(
        self, site: q.BoardSite, panel: Panel, locale: str, now: datetime, version: Version
    ) -> Drawing:
        """Draw and keep; a drawing like the last one keeps its event, so no viewer is sent it again.

        Most changes of a topic leave a given panel as it was (a transfer and the activity feed, a tick
        within the same minute): the viewers compare events by identity and skip those.
        """
        drawing = await self._draw(site, panel, locale, now, version)
        key = (site.id, panel.name, locale)
        current = self._drawn.get(key)
        if current is not None and current.html == drawing.html:
            drawing = Drawing(version, current.html, current.event)
        if current is None or current.version <= version:
            self._drawn[key] = drawing
        return drawing

    async def _draw(
        self, site: q.BoardSite, panel: Panel, locale: str, now: datetime, version: Version
    ) -> Drawing:
        async with self.db.live_reads() as session:
            data = await panel.read(session, site, now)
        locale_token = i18n.current_locale.set(locale)
        zone_token = i18n.display_zone.set(site.zone)
        try:
            template = self.env.get_template(f"boards/_{panel.name}.html")
            html = Markup(template.render(data=data, site=site, now=now, url_for=self.url_for))  # noqa: S704
        finally:
            i18n.current_locale.reset(locale_token)
            i18n.display_zone.reset(zone_token)
        return Drawing(version, html, ServerSentEventMessage(event=panel.name, data=str(html)).encode())

    async def draw_all(self, site: q.BoardSite, locale: str, now: datetime) -> dict[str, Markup]:
        return {panel.name: (await self.draw(site, panel, locale, now)).html for panel in PANELS}


def board_panels(request: Request[Any, Any, Any]) -> BoardPanels:
    """The process's panel drawer (made with the app, in app.asgi's lifespan)."""
    panels: BoardPanels = request.app.state.board_panels
    return panels


async def _site(request: Request[Any, Any, Any], ctx: AppContext, code: str) -> q.BoardSite:
    """The site named in the URL (with its time zone) if this person may work on it (404, 403)."""
    async with ctx.db.reads() as session:
        return own_site(principal_of(request), await q.board_site(session, code.upper()))


def _changed_panels(changes: Iterable[tuple[int, Topic]]) -> set[str]:
    topics = {topic for _site, topic in changes}
    return {panel.name for panel in PANELS if panel.ticks or not topics.isdisjoint(panel.topics)}


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
OPENING = ServerSentEventMessage(comment="open", data=None, retry=1000).encode()  # reconnect after 1 s
KEEP_ALIVE = ServerSentEventMessage(comment="keep-alive", data=None).encode()


def event_stream(events: AsyncIterator[bytes]) -> Stream:
    """Server-sent events already encoded: one chunk per change goes through the stack as it is."""
    return Stream(events, media_type="text/event-stream", headers=SSE_HEADERS)


# What a feed's producer makes of some changes: the entries to publish, and within how many seconds it
# must run again even if nothing changes (None: only when something does).
Made = tuple[Mapping[str, bytes], float | None]


async def _produce(
    ctx: AppContext, feed: Feed, site_id: int, make: Callable[[set[Change] | None], Awaitable[Made]]
) -> None:
    """A feed's producer: subscribe to the site, publish everything once, then what changes.

    `make(changes)` returns the entries to publish for `changes` (None: everything, as it is now), and
    when to call it again with no change (an empty set: a tick of the panels showing durations, a panel
    held back by its pace). The feed's bell rings every LIVE_HEARTBEAT_SECONDS for the keep-alives.
    """
    heartbeat = ctx.settings.web.live_heartbeat_seconds
    loop = asyncio.get_running_loop()
    subscription = ctx.live.subscribe({site_id})
    try:
        changes: set[Change] | None = None  # everything, as it is now
        beat_at = loop.time() + heartbeat
        while True:
            again: float | None = None
            try:
                entries, again = await make(changes)
                feed.publish(entries)
            except DATABASE_ERRORS as error:  # a restart under way: keep the viewers, draw again shortly
                log.warning("live feed of site %s: drawing failed (%s); retrying", site_id, error)
                subscription.everything()
                await asyncio.sleep(RETRY_SECONDS)
            if loop.time() >= beat_at:
                feed.ring()
                beat_at = loop.time() + heartbeat
            quiet = beat_at - loop.time()
            changes = await subscription.wait(quiet if again is None else min(quiet, again))
    finally:
        subscription.close()


async def _view(ctx: AppContext, key: Hashable, produce: Produce) -> AsyncIterator[bytes]:
    """One viewer of the feed `key`: everything it holds, then each publication, keep-alives between.

    Ends after LIVE_STREAM_MAX_SECONDS (at the next heartbeat): the browser reopens it at once, through
    the session check, so a revoked session loses its board there. Leaving the page ends it at once.
    """
    loop = asyncio.get_running_loop()
    feed = ctx.live.view(key, produce)
    try:
        yield OPENING
        ends = loop.time() + ctx.settings.web.live_stream_max_seconds
        generation = 0
        while not feed.closed:
            bell = feed.bell  # taken before reading: a publication while this viewer sends still wakes it
            chunk, generation = feed.since(generation), feed.generation
            if chunk:
                yield chunk
            if loop.time() >= ends:
                return
            await bell.wait()
            if feed.generation == generation and not feed.closed:
                yield KEEP_ALIVE
    finally:
        ctx.live.leave(key, feed)


class BoardFeed:
    """What the boards of a site in one language are sent: the panels a change redrew, each at its pace."""

    def __init__(
        self, ctx: AppContext, drawer: BoardPanels, site: q.BoardSite, locale: str, feed: Feed
    ) -> None:
        self.ctx, self.drawer, self.site, self.locale, self.feed = ctx, drawer, site, locale, feed
        self.held: set[str] = set()  # panels whose topics changed, waiting for their pace
        self.drawn_at: dict[str, float] = {}  # loop time of each panel's last drawing for the feed

    async def make(self, changes: set[Change] | None) -> Made:
        """The panels drawn for `changes` whose drawing differs from the one published."""
        clock, now = asyncio.get_running_loop().time(), self.ctx.now()
        wanted = set(PANEL_BY_NAME) if changes is None else _changed_panels(changes) | self.held
        due = [
            panel
            for panel in PANELS
            if panel.name in wanted
            and (changes is None or clock >= self.drawn_at.get(panel.name, -math.inf) + panel.pace)
        ]
        self.held = wanted - {panel.name for panel in due}
        # Side by side: a change's panels are ready when the slowest is, not after the sum of all.
        drawings = await asyncio.gather(*(self.drawer.draw(self.site, p, self.locale, now) for p in due))
        entries = {}
        for panel, drawing in zip(due, drawings, strict=True):
            self.drawn_at[panel.name] = clock
            if self.feed.latest(panel.name) is not drawing.event:
                entries[panel.name] = drawing.event
        next_tick = TICK_SECONDS - now.timestamp() % TICK_SECONDS + 0.01
        held_until = (self.drawn_at[name] + PANEL_BY_NAME[name].pace - clock for name in self.held)
        return entries, min([next_tick, *held_until])


class BoardController(Controller):
    """The supervisors' boards, per site, and the wall-screen mode."""

    @get("/boards", name="boards:home", opt=access(SUPERVISORS))
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        return await to_first_site(request, ctx, "boards:board")

    @get("/sites/{site:str}/board", name="boards:board", opt=access(SUPERVISORS))
    async def board(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _board_page(request, ctx, await _site(request, ctx, site), "boards/board.html")

    @get("/sites/{site:str}/board/panels", name="boards:panels", opt=access(SUPERVISORS))
    async def panels(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        """Every panel at once: the board's refresh while its live stream is cut."""
        return await _board_page(request, ctx, await _site(request, ctx, site), "boards/_panels.html")

    @get("/sites/{site:str}/board/wall", name="boards:wall", opt=access(SUPERVISORS))
    async def wall(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        rotate: FromQuery[str | None] = None,
        every: Annotated[int, Parameter(ge=10, le=3600)] = 60,
    ) -> Template:
        """Large type, no navigation; `rotate=LYS,LIL` moves to the next site every `every` seconds."""
        current = await _site(request, ctx, site)
        codes = [c.strip().upper() for c in (rotate or "").split(",") if c.strip()]
        following = None
        if len(codes) > 1:
            at = codes.index(current.code) if current.code in codes else -1
            following = codes[(at + 1) % len(codes)]
            await _site(request, ctx, following)  # refuse a rotation through a site that is not theirs
        return await _board_page(
            request,
            ctx,
            current,
            "boards/wall.html",
            rotate=",".join(codes),
            every=every,
            following=following,
        )

    @get("/sites/{site:str}/board/events", name="boards:events", opt=access(SUPERVISORS))
    async def events(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Stream:
        """The board's live stream: each panel as an event named after it, its HTML as data."""
        board_site = await _site(request, ctx, site)
        drawer = board_panels(request)
        locale = i18n.current_locale.get()

        def produce(feed: Feed) -> Coroutine[Any, Any, None]:
            return _produce(ctx, feed, board_site.id, BoardFeed(ctx, drawer, board_site, locale, feed).make)

        return event_stream(_view(ctx, ("board", board_site.id, locale), produce))


async def _board_page(
    request: Request[Any, Any, Any], ctx: AppContext, site: q.BoardSite, template: str, **extra: Any
) -> Template:
    panels = await board_panels(request).draw_all(site, i18n.current_locale.get(), ctx.now())
    return page(
        request,
        template,
        board_site=site,
        panels=panels,
        poll_seconds=ctx.settings.web.board_poll_seconds,
        **extra,
    )


class LiveController(Controller):
    """A site's topics as they change, for pages whose fragments are drawn per person (pick lists)."""

    @get("/sites/{site:str}/live", name="live:events", opt=access(EVERYONE))
    async def events(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        topic: FromQuery[list[Topic] | None] = None,
    ) -> Stream:
        """`event: <topic>` (no data beyond the topic) each time a topic of the site changes."""
        live_site = await _site(request, ctx, site)
        wanted = frozenset(topic or Topic)

        def produce(feed: Feed) -> Coroutine[Any, Any, None]:
            async def make(changes: set[Change] | None) -> Made:
                topics = wanted if changes is None else {t for _s, t in changes if t in wanted}
                return {t.value: TOPIC_EVENTS[t.value] for t in sorted(topics)}, None

            return _produce(ctx, feed, live_site.id, make)

        return event_stream(_view(ctx, ("topics", live_site.id, wanted), produce))


TOPIC_EVENTS = {
    topic.value: ServerSentEventMessage(event=topic.value, data=topic.value).encode() for topic in Topic
}
