"""Live-board events: "site S, topic T changed", published after commit and coalesced per process.

A NOTIFY takes a global lock at commit, so one inside every stock transaction would cap writes at a
few hundred per second (ARCHITECTURE.md). Instead a use case marks what it changed on its session
(`changed`); when its transaction commits, `Database` hands the marks to the process's `Publisher`,
which sends at most one NOTIFY per topic per `interval`, carrying every (site, topic) pair marked
since. The first change of a topic after a quiet spell goes out at once; a burst is folded into one
event. Topics keep their own pace: a stream of receipts (stock) never holds back a new order. Boards
re-read the database on an event, so a lost or merged event costs nothing but one refresh.

Payloads are ids and topic names only (`"3:orders 3:picking"`), never figures or secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CHANNEL = "sd_live"
PAYLOAD_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more
_MARKS = "live_changes"


class Topic(StrEnum):
    """What changed at a site; each board fragment names the topics it is drawn from."""

    ORDERS = "orders"  # orders created, released, cancelled, allocated, picked, dispatched
    PICKING = "picking"  # pick lists taken, given back, reassigned; picks confirmed
    STOCK = "stock"  # receipts, moves, adjustments, counts
    DISPATCH = "dispatch"  # dispatch runs and shipments


Change = tuple[int, Topic]
_TOPIC_NAMES = frozenset(topic.value for topic in Topic)


def changed(session: AsyncSession, site_id: int, *topics: Topic) -> None:
    """Mark `topics` of `site_id` as changed by this transaction; published only if it commits."""
    marks: set[Change] = session.info.setdefault(_MARKS, set())
    marks.update((site_id, topic) for topic in topics)


def take_changes(session: AsyncSession) -> set[Change]:
    """The marks of a transaction that just committed (and forget them)."""
    marks: set[Change] = session.info.pop(_MARKS, set())
    return marks


def encode(changes: Iterable[Change]) -> list[str]:
    """Payloads for `changes`, each under PostgreSQL's limit, in a stable order."""
    payloads: list[str] = []
    current = ""
    for site_id, topic in sorted(changes):
        item = f"{site_id}:{topic.value}"
        if current and len(current) + 1 + len(item) > PAYLOAD_LIMIT:
            payloads.append(current)
            current = ""
        current = f"{current} {item}" if current else item
    if current:
        payloads.append(current)
    return payloads


def decode(payload: str) -> set[Change]:
    """The changes of one payload; anything malformed (another sender's noise) is ignored."""
    changes: set[Change] = set()
    for item in payload.split():
        site, _sep, name = item.partition(":")
        if site.isdigit() and name in _TOPIC_NAMES:
            changes.add((int(site), Topic(name)))
    return changes


class Publisher:
    """At most one NOTIFY per topic per `interval` per process; `send` delivers one payload."""

    def __init__(self, send: Callable[[str], Awaitable[None]], interval: float = 0.25) -> None:
        self.send, self.interval = send, interval
        self.pending: set[Change] = set()
        self.sent = 0  # NOTIFY statements sent (the tests count them)
        self._last: dict[Topic, float] = {}  # when each topic was last sent (loop time)
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()  # a change arrived while the drain waited for another topic's turn

    def publish(self, changes: Iterable[Change]) -> None:
        self.pending.update(changes)
        if not self.pending:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="live-publisher")
        else:
            self._woken.set()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            now = loop.time()
            due = {change for change in self.pending if self._next(change[1]) <= now}
            if not due:  # every pending topic was sent less than `interval` ago: wait for the first one
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self._next(topic) for _site, topic in self.pending) - now):
                        await self._woken.wait()
                continue
            self.pending -= due
            for _site, topic in due:
                self._last[topic] = now
            for payload in encode(due):
                try:
                    await self.send(payload)
                    self.sent += 1
                except Exception as error:  # a lost event costs one board refresh, never a use case
                    log.warning("live event not sent (%s): boards will catch up on their next refresh", error)

    def _next(self, topic: Topic) -> float:
        return self._last.get(topic, float("-inf")) + self.interval

    async def flush(self) -> None:
        """Send what is pending now (at shutdown, so the last change of a command is not lost)."""
        if self._task is not None and not self._task.done():
            await self._task
