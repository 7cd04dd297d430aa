"""Live-board events: payloads, the publisher's coalescing (a fake sender; the real NOTIFY path is
tested against PostgreSQL in tests/integration/test_boards.py), and the feeds that fan them out."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from app.db.live import PAYLOAD_LIMIT, Publisher, Topic, decode, encode
from app.db.queries.boards import BoardSite
from app.routes.boards import PANEL_BY_NAME, PANELS, BoardFeed, Drawing, Panel
from app.web import i18n
from app.web.i18n import format_minutes
from app.web.live import Feed, LiveHub

changes = st.sets(st.tuples(st.integers(1, 10**12), st.sampled_from(list(Topic))), max_size=2000)


@given(changes)
def test_payloads_carry_every_change_and_stay_under_postgresqls_limit(marked):
    payloads = encode(marked)
    assert all(len(p.encode()) < PAYLOAD_LIMIT + 100 and len(p.encode()) < 8000 for p in payloads)
    decoded = set().union(*(decode(p) for p in payloads)) if payloads else set()
    assert decoded == marked
    assert len(payloads) == len(set(payloads))


def test_noise_on_the_channel_is_ignored():
    assert decode("3:orders nonsense 4:unknown x:stock 5: :picking 7:stock") == {
        (3, Topic.ORDERS),
        (7, Topic.STOCK),
    }


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[tuple[float, str]] = []
        self.fail_first = fail_first

    async def __call__(self, payload: str) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("database restarting")
        self.sent.append((asyncio.get_running_loop().time(), payload))


async def test_the_first_change_goes_out_at_once_and_a_burst_waits_for_the_interval():
    recorder = Recorder()
    publisher = Publisher(recorder, interval=3600)
    publisher.publish({(1, Topic.STOCK)})
    for _ in range(5):
        await asyncio.sleep(0)
    assert [p for _at, p in recorder.sent] == ["1:stock"]  # no wait after a quiet spell
    for n in range(50):
        publisher.publish({(n % 3 + 1, Topic.STOCK)})
        await asyncio.sleep(0)
    assert len(recorder.sent) == 1  # the burst waits for the next interval, folded into one event
    # Another topic keeps its own pace: a stream of receipts does not hold back a new order.
    publisher.publish({(2, Topic.ORDERS)})
    for _ in range(5):
        await asyncio.sleep(0)
    assert [p for _at, p in recorder.sent] == ["1:stock", "2:orders"]
    publisher.publish({(3, Topic.ORDERS)})
    await asyncio.sleep(0)
    assert len(recorder.sent) == 2
    assert publisher.pending == {(1, Topic.STOCK), (2, Topic.STOCK), (3, Topic.STOCK), (3, Topic.ORDERS)}
    assert publisher._task is not None
    publisher._task.cancel()


async def test_everything_published_is_delivered():
    recorder = Recorder()
    publisher = Publisher(recorder, interval=0.02)
    published = set()
    for n in range(60):
        change = (n % 7 + 1, list(Topic)[n % 4])
        published.add(change)
        publisher.publish({change})
        await asyncio.sleep(0.002)
    await publisher.flush()
    assert set().union(*(decode(p) for _at, p in recorder.sent)) == published
    assert len(recorder.sent) < 60
    for topic in Topic:  # never two NOTIFYs of a topic within the interval
        times = [at for at, p in recorder.sent if any(t == topic for _s, t in decode(p))]
        assert all(later - earlier >= 0.02 * 0.99 for earlier, later in itertools.pairwise(times))


async def test_a_failed_notify_is_logged_and_the_next_change_still_goes_out():
    recorder = Recorder(fail_first=1)
    publisher = Publisher(recorder, interval=0.01)
    publisher.publish({(1, Topic.ORDERS)})
    await publisher.flush()
    assert recorder.sent == []  # lost: boards catch up on their next refresh
    publisher.publish({(1, Topic.PICKING)})
    await publisher.flush()
    assert [decode(p) for _at, p in recorder.sent] == [{(1, Topic.PICKING)}]


def test_durations_read_as_people_say_them():
    i18n.load_catalogs()
    assert format_minutes(0) == "0 min"
    assert format_minutes(59) == "59 min"
    assert format_minutes(65) == "1 h 05"
    assert format_minutes(24 * 60 + 90) == "1 j 1 h"  # French is the default language


async def test_a_slow_subscriber_holds_at_most_one_mark_per_topic_of_its_sites():
    hub = LiveHub("postgresql://unused")  # never started: fan-out only
    slow = hub.subscribe({1, 2})
    for n in range(10_000):
        hub.deliver({(n % 3 + 1, list(Topic)[n % 4])})
    assert slow.dirty == {(site, topic) for site in (1, 2) for topic in Topic}  # site 3 is not theirs
    assert await slow.wait(0) == {(site, topic) for site in (1, 2) for topic in Topic}
    assert slow.dirty == set()
    slow.close()
    assert hub.subscribers == 0


# ---------------------------------------------------------------- feeds: one producer, many viewers


def test_a_viewer_gets_each_entry_published_since_it_last_sent_once_in_the_latest_version():
    feed = Feed()
    assert feed.since(0) == b""
    feed.publish({"pipeline": b"P1", "late": b"L1"})
    up_to_date = feed.generation
    assert feed.since(0) == b"P1L1"
    feed.publish({"late": b"L2"})
    assert feed.since(up_to_date) == b"L2"  # the last publication's chunk, joined once for every viewer
    feed.publish({"activity": b"A1"})
    feed.publish({"late": b"L3", "activity": b"A2"})
    # A slow viewer catches up with one chunk: every entry changed since, each in its latest version.
    assert feed.since(up_to_date) == b"L3A2"
    assert feed.since(0) == b"P1L3A2"
    assert feed.since(feed.generation) == b""
    before = feed.generation
    feed.publish({})
    assert feed.generation == before  # nothing to publish is no publication


async def test_viewers_wake_on_a_publication_or_a_heartbeat_and_miss_nothing_while_they_send():
    feed = Feed()
    bell = feed.bell  # a viewer takes the bell before reading, then sends (other tasks run meanwhile)
    feed.publish({"late": b"L1"})
    await asyncio.wait_for(bell.wait(), 1)  # rung: the publication during its send is not missed
    bell = feed.bell
    assert not bell.is_set()
    feed.ring()  # a heartbeat: the viewer wakes to nothing new and sends a keep-alive
    await asyncio.wait_for(bell.wait(), 1)
    bell = feed.bell
    feed.close()
    assert bell.is_set() and feed.closed


async def test_viewers_of_one_key_share_one_producer_stopped_by_the_last_to_leave():
    hub = LiveHub("postgresql://unused")  # never started: feeds only
    started: list[Feed] = []
    stopped = asyncio.Event()

    async def produce(feed: Feed) -> None:
        started.append(feed)
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    first, second = hub.view(("board", 1, "fr"), produce), hub.view(("board", 1, "fr"), produce)
    other = hub.view(("board", 1, "en"), produce)
    await asyncio.sleep(0)
    assert first is second and other is not first and len(started) == 2 and hub.feeds == 2
    hub.leave(("board", 1, "fr"), first)
    await asyncio.sleep(0)
    assert not stopped.is_set() and hub.feeds == 2  # a viewer is still there
    hub.leave(("board", 1, "en"), other)
    hub.leave(("board", 1, "fr"), second)
    await asyncio.wait_for(stopped.wait(), 1)
    assert hub.feeds == 0


async def test_a_producer_that_fails_ends_its_viewers_streams_and_the_next_viewer_starts_afresh():
    hub = LiveHub("postgresql://unused")
    attempts = 0

    async def produce(feed: Feed) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("a bug in a panel")
        await asyncio.Event().wait()

    failed = hub.view("k", produce)
    await asyncio.sleep(0.01)
    assert failed.closed and hub.feeds == 0  # its viewers end; browsers reopen their streams
    fresh = hub.view("k", produce)
    await asyncio.sleep(0)
    assert fresh is not failed and not fresh.closed and attempts == 2
    hub.leave("k", failed)  # a late leave of the failed feed changes nothing for the new one
    assert hub.feeds == 1
    hub.leave("k", fresh)
    await asyncio.sleep(0)
    assert hub.feeds == 0


class FakeDrawer:
    """Draws each panel as its current `events` entry, counting drawings (no database)."""

    def __init__(self) -> None:
        self.events = {panel.name: f"{panel.name}-1".encode() for panel in PANELS}
        self.drawn: Counter[str] = Counter()

    async def draw(self, _site: object, panel: Panel, _locale: str, _now: datetime) -> Drawing:
        self.drawn[panel.name] += 1
        return Drawing((), Markup(""), self.events[panel.name])


async def test_a_paced_panel_is_drawn_at_most_once_per_pace_and_its_change_is_never_dropped():
    drawer, feed = FakeDrawer(), Feed()
    now = datetime(2026, 11, 30, 9, 0, 10, tzinfo=UTC)
    ctx = SimpleNamespace(now=lambda: now)
    site = BoardSite(1, "LYS", "Lyon", ZoneInfo("Europe/Paris"))
    board = BoardFeed(ctx, drawer, site, "fr", feed)  # type: ignore[arg-type]
    activity = PANEL_BY_NAME["activity"]
    assert activity.pace > 0 and PANEL_BY_NAME["late"].pace == 0

    entries, again = await board.make(None)  # a stream opens: everything, whatever the pace
    assert set(entries) == set(PANEL_BY_NAME)
    assert again is not None and 0 < again <= 20.01  # the next tick of the durations (at :30)
    feed.publish(entries)

    drawer.events["activity"] = b"activity-2"
    entries, again = await board.make({(1, Topic.STOCK)})  # a receipt right after: held for its pace
    assert "activity" not in entries and drawer.drawn["activity"] == 1
    assert again is not None and 0 < again <= activity.pace
    drawer.events["late"] = b"late-2"
    entries, _again = await board.make({(1, Topic.ORDERS)})  # other panels are not held with it
    assert entries == {"late": b"late-2"} and board.held == {"activity"}
    feed.publish(entries)

    await asyncio.sleep(again)  # the producer calls again when told, with no new change
    entries, again = await board.make(set())
    assert entries == {"activity": b"activity-2"} and board.held == set()
    assert drawer.drawn["activity"] == 2
