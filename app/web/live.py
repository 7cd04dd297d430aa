"""The web process's end of live events: one LISTEN connection, fanned out in memory to subscribers.

Each web process holds one asyncpg connection listening on `app.db.live.CHANNEL`. What arrives is
"site S, topic T changed"; the hub hands it to the subscribers of site S (the producers of the feeds
below: one per site's board and language, one per pick-list topic stream), who re-render from the
database. A subscriber's backlog is the set of (site, topic) pairs it has not drawn yet, so it is
bounded by sites x topics however slow it is: changes merge.

Litestar's PostgreSQL channel backends never notice a dead LISTEN connection (STACK-NOTES.md §2), so
the hub does it itself: asyncpg's termination callback catches a closed socket at once, and a
watchdog NOTIFYs a private channel every `check_every` seconds and expects it back, which catches a
half-open one. Either way the hub reconnects and tells every subscriber to redraw everything, since
events may have been missed meanwhile.

Open streams do not subscribe one by one: viewers of the same thing (a site's board in one language)
share a `Feed`, made by one producer task that subscribes, draws what changed once and publishes it
as one chunk; each viewer wakes and sends that chunk. A viewer's backlog is one generation number. A
thousand boards cost a thousand wake-ups and sends per change, and nothing else per viewer
(bench/README.md, "Boards").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge

from app.db.live import CHANNEL, Change, Topic, decode

log = logging.getLogger(__name__)

SUBSCRIBERS = Gauge(
    "dispatch_live_subscribers", "Open live streams (boards, pick-list pages)", multiprocess_mode="livesum"
)
LISTENING = Gauge(
    "dispatch_live_listener_up", "1 while the process's LISTEN connection works", multiprocess_mode="min"
)
RECONNECTS = MetricCounter("dispatch_live_reconnects_total", "LISTEN connections re-opened after a loss")
_hub_ids = itertools.count(1)


class Subscription:
    """What one open stream has not drawn yet; `wait` hands it over."""

    def __init__(self, hub: LiveHub, site_ids: frozenset[int]) -> None:
        self.hub, self.site_ids = hub, site_ids
        self.dirty: set[Change] = set()
        self._wake = asyncio.Event()

    def offer(self, changes: Iterable[Change]) -> None:
        fresh = {change for change in changes if change[0] in self.site_ids}
        if fresh:
            self.dirty |= fresh
            self._wake.set()

    def everything(self) -> None:
        """Ask for a redraw of every topic (after a reconnect, events may have been missed)."""
        self.offer((site_id, topic) for site_id in self.site_ids for topic in Topic)

    async def wait(self, quiet: float) -> set[Change]:
        """The changes since the last call, or an empty set after `quiet` seconds without any."""
        if not self._wake.is_set():
            # asyncio.timeout, not wait_for: no task per wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(quiet):
                    await self._wake.wait()
        self._wake.clear()
        changes, self.dirty = self.dirty, set()
        return changes

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Feed:
    """What every viewer of one stream is sent, made once for all of them by the feed's producer.

    The producer publishes named entries (a board's panels, as SSE events already encoded); each
    publication is a generation. A viewer remembers the generation it has sent and takes `since(it)`:
    every entry published after it, as one chunk. The chunk of the last publication is joined once,
    for every viewer that was up to date, which is all of them unless one is slow. Viewers wait on one
    shared bell, rung at each publication and at each heartbeat (a viewer that wakes to nothing new
    sends a keep-alive).
    """

    def __init__(self) -> None:
        self.generation = 0
        self.closed = False  # the producer stopped: viewers end their streams (browsers reopen them)
        self._entries: dict[str, tuple[int, bytes]] = {}  # name -> (generation published, data)
        self._last: tuple[int, bytes] = (0, b"")  # (generation it follows, chunk) of the last publication
        self.bell = asyncio.Event()

    def publish(self, entries: Mapping[str, bytes]) -> None:
        if not entries:
            return
        self.generation += 1
        for name, data in entries.items():
            self._entries[name] = (self.generation, data)
        self._last = (self.generation - 1, b"".join(entries.values()))
        self.ring()

    def ring(self) -> None:
        """Wake every viewer; a new bell for the next time (viewers hold the one they waited on)."""
        bell, self.bell = self.bell, asyncio.Event()
        bell.set()

    def latest(self, name: str) -> bytes | None:
        entry = self._entries.get(name)
        return None if entry is None else entry[1]

    def since(self, generation: int) -> bytes:
        """Every entry published after `generation`, as one chunk (empty if none)."""
        if generation == self.generation:
            return b""
        if self._last[0] == generation:
            return self._last[1]
        return b"".join(data for published, data in self._entries.values() if published > generation)

    def close(self) -> None:
        self.closed = True
        self.ring()


Produce = Callable[[Feed], Coroutine[Any, Any, None]]


@dataclass
class _OpenFeed:
    feed: Feed
    producer: asyncio.Task[None]
    viewers: int = 0


class LiveHub:
    """One per web process: the LISTEN connection, its watchdog, and the subscribers per site."""

    def __init__(
        self,
        dsn: str,
        *,
        check_every: float = 10.0,
        answer_within: float = 3.0,
        retry_every: float = 1.0,
        on_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.dsn = dsn
        # Called when the connection is lost: most often the database restarted, and every pooled connection
        # of the process died with it; the app drops them then, before a request meets one.
        self.on_lost = on_lost
        self.check_every, self.answer_within, self.retry_every = check_every, answer_within, retry_every
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.backend_pid: int | None = None  # the listener's server process (tests terminate it)
        # What a drawing of a fragment depends on: how many changes of each (site, topic) arrived, and how
        # many times the connection opened (each opening may have missed some).
        self.versions: Counter[Change] = Counter()
        self.epoch = 0
        self._by_site: dict[int, set[Subscription]] = defaultdict(set)
        self._feeds: dict[Hashable, _OpenFeed] = {}
        self.ping_channel = f"sd_live_ping_{os.getpid()}_{next(_hub_ids)}"
        self._pong = asyncio.Event()
        self.connection: asyncpg.Connection | None = None  # the LISTEN connection, while it is open
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- subscribers -------------------------------------------------------------------------------------
    def subscribe(self, site_ids: Collection[int]) -> Subscription:
        subscription = Subscription(self, frozenset(site_ids))
        for site_id in subscription.site_ids:
            self._by_site[site_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for site_id in subscription.site_ids:
            subscribers = self._by_site.get(site_id)
            if subscribers is not None and subscription in subscribers:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_site[site_id]

    @property
    def subscribers(self) -> int:
        return len({s for subscribers in self._by_site.values() for s in subscribers})

    # -- feeds -------------------------------------------------------------------------------------------
    def view(self, key: Hashable, produce: Produce) -> Feed:
        """Join the feed `key`, starting its producer (`produce(feed)`) for its first viewer."""
        open_feed = self._feeds.get(key)
        if open_feed is None:
            feed = Feed()
            producer = asyncio.get_running_loop().create_task(produce(feed), name=f"live-feed {key}")
            open_feed = self._feeds[key] = _OpenFeed(feed, producer)
            producer.add_done_callback(lambda task: self._producer_done(key, open_feed, task))
        open_feed.viewers += 1
        SUBSCRIBERS.inc()
        return open_feed.feed

    def leave(self, key: Hashable, feed: Feed) -> None:
        """A viewer of `feed` left; the last one stops its producer."""
        SUBSCRIBERS.dec()
        open_feed = self._feeds.get(key)
        if open_feed is None or open_feed.feed is not feed:
            return  # its producer had stopped: the feed is gone already
        open_feed.viewers -= 1
        if open_feed.viewers == 0:
            del self._feeds[key]
            open_feed.producer.cancel()

    @property
    def feeds(self) -> int:
        return len(self._feeds)

    def _producer_done(self, key: Hashable, open_feed: _OpenFeed, task: asyncio.Task[None]) -> None:
        if self._feeds.get(key) is open_feed:
            del self._feeds[key]  # the next viewer starts a new producer
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("live feed %s stopped", key, exc_info=error)
        open_feed.feed.close()

    def deliver(self, changes: set[Change]) -> None:
        """Hand `changes` to the subscribers of their sites (and only theirs)."""
        by_site: dict[int, set[Change]] = defaultdict(set)
        for change in changes:
            self.versions[change] += 1
            by_site[change[0]].add(change)
        for site_id, site_changes in by_site.items():
            for subscription in tuple(self._by_site.get(site_id, ())):
                subscription.offer(site_changes)

    # -- the connection ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        self._stopping = True
        for open_feed in tuple(self._feeds.values()):
            open_feed.producer.cancel()
        task = self._task
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)  # not `await task`: that would cancel us with it
        LISTENING.set(0)

    # Timeouts are asyncio.timeout(), never wait_for(): on Python 3.11 wait_for() loses a cancellation
    # that arrives as the awaited thing completes (a ping answered as the app shuts down), and the hub
    # would then never stop.
    async def _run(self) -> None:
        first = True
        while not self._stopping:
            connection: asyncpg.Connection | None = None
            try:
                async with asyncio.timeout(self.answer_within * 2):
                    connection = await asyncpg.connect(
                        self.dsn, server_settings={"application_name": "dispatch-live"}
                    )
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(CHANNEL, self._on_event)
                await connection.add_listener(self.ping_channel, self.on_pong)
                self.connection, self.backend_pid = connection, connection.get_server_pid()
                if not first:
                    self.reconnects += 1
                    RECONNECTS.inc()
                    log.info("live events: listening again after a lost connection")
                first = False
                self.epoch += 1
                self._set_connected(True)
                # Whatever happened while nobody listened, every open stream redraws everything.
                for subscribers in tuple(self._by_site.values()):
                    for subscription in tuple(subscribers):
                        subscription.everything()
                await self._watch(connection, lost)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("live events: listener lost (%s); reconnecting", error or type(error).__name__)
            finally:
                was_connected = self.connected.is_set()
                self._set_connected(False)
                self.connection = None
                if connection is not None:
                    connection.terminate()
            if was_connected and not self._stopping and self.on_lost is not None:
                try:
                    await self.on_lost()
                except Exception:  # the listener must come back whatever the callback does
                    log.exception("live events: on_lost failed")
            await asyncio.sleep(self.retry_every)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is closed, or does not answer its own ping in time (TimeoutError)."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_every):
                    await lost.wait()
                return
            self._pong.clear()
            async with asyncio.timeout(self.answer_within):
                await connection.execute(f"NOTIFY {self.ping_channel}")
                await self._pong.wait()

    def _on_event(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        self.deliver(decode(str(payload)))

    def on_pong(self, *_args: Any) -> None:
        self._pong.set()

    def _set_connected(self, up: bool) -> None:
        (self.connected.set if up else self.connected.clear)()
        LISTENING.set(1 if up else 0)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _connection: event.set()
