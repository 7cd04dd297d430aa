"""`python -m bench.boards`: 1,000 live-board subscribers on one web worker while stock writes flow.

What it measures, against the issue's targets (printed PASS/MISS, never asserted):
- memory per subscriber: the granian worker's RSS (VmRSS of the server's child processes) just before
  the subscribers open and once every one of them has its initial panels, divided by their number;
- delay from commit to receipt: every ~0.5 s a probe commits a change through a service that publishes
  live events (a draft order `PRB<run>-<n>` created by POST /api/v1/orders at the board's site, due long
  ago, so it tops the `late` panel); for every (probe, subscriber) pair, the time from the probe's
  commit to the moment that subscriber reads an event whose data names the probe: p50, p95, p99
  (target p95 <= 250 ms), and every pair never received (a loss shows). The commit is dated by the
  earlier of two moments it precedes: the probe's 201 as read, and its NOTIFY as heard by a LISTEN
  connection of this process (a busy worker may send the 201 seconds after the commit); the delay from
  the 201 alone and the NOTIFY's lag are printed too;
- stock writes with boards connected against none: the `writes` target of `python -m bench` (wrk,
  16 connections, the Lua script of bench/stock.py: receipts and transfers spread over both sites),
  once with no subscriber and once with the subscribers connected, in alternating order per round;
  the ratio of writes per second (target >= 90 %). Probes run during both, so the only difference
  between the two runs is the open boards. The writes are checked afterwards (bench/stock.py).

How: embedded PostgreSQL (or BENCH_DATABASE_URL), migrations, demo data, go-live stock and the `bench`
supervisor (bench/database.py, bench/stock.py); our server as deployed with one granian worker
(bench/servers.py); a login through the form for the session cookie; the subscribers are plain
asyncio connections of this process (HTTP/1.1 GET, chunked body, SSE blocks split on blank lines, the
event name and the probe numbers read from each block), opened 50 at a time. Also printed: the
worker's CPU beyond what the same writes cost with no board (per probe, per probe and subscriber),
this process's CPU, and how busy the whole machine was.

Caveats: everything shares the machine (2 cores here): the web worker, PostgreSQL, wrk and the 1,000
clients of this process. A receipt is timed when this process's event loop reads it, so the clients'
own lag is part of the delay; the 201 is timed by a probe thread of the same process (within a GIL
switch interval, 5 ms). The prober waits for each answer, so a slow worker gets fewer probes. Python
keeps freed memory for reuse, so only the first opening's RSS delta is the memory per subscriber;
later openings are printed for reference. Probe orders are cancelled at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
import psutil

from app.db.live import CHANNEL, Topic
from app.db.urls import DatabaseUrls
from app.routes.boards import PANELS
from bench.cpu import own_cpu, tree_cpu
from bench.database import bench_database, prepare
from bench.load import Run, run_wrk, wrk_path
from bench.servers import HOST, Server, free_port, log_in, ours_command, running
from bench.stock import (
    MOVEMENTS_PATH,
    SEARCH_SITE,
    Answers,
    StockPlan,
    WriteCheck,
    api_token,
    movement_body,
    movement_high_mark,
    post_movement,
    prepare_stock,
    read_answers,
    verify_writes,
    writes_script,
)

SUBSCRIBERS = 1000
TARGET_P95_MS = 250.0
TARGET_RATIO = 0.90
WRITE_CLIENTS = 16
DEMO_SEED = 20261125
BOARD_SITE = SEARCH_SITE  # LYS: the larger demo site, where the writes and the probes land
PANEL_NAMES = frozenset(panel.name for panel in PANELS)
PROBE_PANEL = "late"  # open orders past due, most overdue first: where a probe order shows
ORDERS_PATH = "/api/v1/orders"
OPEN_CONCURRENCY = 50  # subscribers opening at the same time
OPEN_TIMEOUT = 60.0  # seconds for one subscriber to get its initial panels
GRACE_SECONDS = 3.0  # after the last probe, how long receipts are still awaited
# Between a probe's answer and the next probe: longer than the publisher's coalescing (250 ms), so the
# first NOTIFY heard after a probe is sent is never the previous probe's.
PROBE_GAP_SECONDS = 0.3
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
EVENT_LINE = re.compile(rb"^event:([^\n]*)", re.MULTILINE)


def _log(message: str) -> None:
    print(f"[boards] {message}", flush=True)


# ------------------------------------------------------------------------------ the subscribers


@dataclass
class Subscriber:
    """One open board stream, as a browser tab would hold it."""

    index: int
    probe_pattern: re.Pattern[bytes]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    panels: set[str] = field(default_factory=set)
    received: dict[int, float] = field(default_factory=dict)  # probe number -> first receipt (monotonic)
    events: Counter[str] = field(default_factory=Counter)
    event_bytes: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    failure: str | None = None  # why it could not open, or why it ended before being closed

    def take(self, block: bytes, at: float) -> None:
        """One SSE block (its lines without the blank line that ends it)."""
        found = EVENT_LINE.search(block)  # the panel's HTML may run over many `data:` lines: not split
        if found is None:
            return  # a comment (open, keep-alive) or a retry field
        name = found.group(1).strip().decode()
        self.events[name] += 1
        self.event_bytes[name] += len(block)
        self.panels.add(name)
        if name == PROBE_PANEL:
            for number in self.probe_pattern.findall(block):
                self.received.setdefault(int(number), at)
        if not self.ready.is_set() and self.panels >= PANEL_NAMES:
            self.ready.set()


class Fleet:
    """N subscribers of a board's event stream, in this process's event loop."""

    def __init__(self, port: int, path: str, cookie: str, probe_pattern: re.Pattern[bytes]) -> None:
        self.port, self.path, self.cookie, self.probe_pattern = port, path, cookie, probe_pattern
        self.subscribers: list[Subscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def open(self, n: int) -> float:
        """Open `n` subscribers, `OPEN_CONCURRENCY` at a time; seconds until all are ready or failed."""
        started = time.monotonic()
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one(subscriber: Subscriber) -> None:
            async with gate:
                task = asyncio.create_task(self._follow(subscriber))
                self._tasks.append(task)
                waiters = {task, asyncio.create_task(subscriber.ready.wait())}
                done, _pending = await asyncio.wait(
                    waiters, timeout=OPEN_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters - {task}:
                    waiter.cancel()
                if not done and subscriber.failure is None:
                    subscriber.failure = (
                        f"no initial panels within {OPEN_TIMEOUT:g}s: {sorted(subscriber.panels)}"
                    )

        self.subscribers = [Subscriber(i, self.probe_pattern) for i in range(n)]
        await asyncio.gather(*(one(s) for s in self.subscribers))
        return time.monotonic() - started

    @property
    def ready(self) -> list[Subscriber]:
        return [s for s in self.subscribers if s.ready.is_set()]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _follow(self, subscriber: Subscriber) -> None:
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {self.cookie}\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        transport: asyncio.BaseTransport | None = None
        try:
            transport, _protocol = await loop.create_connection(
                lambda: StreamReading(subscriber, request, ended), HOST, self.port
            )
            await ended
            if not self._closing and subscriber.failure is None:
                subscriber.failure = "the server ended the stream"
        except asyncio.CancelledError:
            raise
        except (OSError, ValueError) as error:
            if not self._closing and subscriber.failure is None:
                subscriber.failure = f"{type(error).__name__}: {error}"
        finally:
            if transport is not None:
                transport.close()


class StreamReading(asyncio.Protocol):
    """One subscriber's HTTP/1.1 response, parsed as bytes arrive (no await per chunk).

    The subscribers share the machine with the server under test: their reading is kept as light as
    a client can be, so that what the bench measures is the server's cost, not its own.
    """

    def __init__(self, subscriber: Subscriber, request: bytes, ended: asyncio.Future[None]) -> None:
        self.subscriber, self.request, self.ended = subscriber, request, ended
        self.transport: asyncio.Transport | None = None
        self.raw = b""  # received, not parsed yet (head, chunk framing)
        self.text = b""  # event-stream text not ending with a blank line yet
        self.chunked: bool | None = None  # None until the head has been read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        self.raw += data
        if self.chunked is None and not self._head():
            return
        body = self._body()
        if body:
            self.subscriber.body_bytes += len(body)
            self.text += body.replace(b"\r\n", b"\n")
            *blocks, self.text = self.text.split(b"\n\n")
            for block in blocks:
                self.subscriber.take(block, at)

    def _head(self) -> bool:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.raw = self.raw[:end].decode("latin-1"), self.raw[end + 4 :]
        status = head.split(" ", 2)[1] if " " in head else "?"
        if status != "200":
            self.subscriber.failure = f"HTTP {status}: {self.raw[:200]!r}"
            self._end()
            return False
        self.chunked = "transfer-encoding: chunked" in head.lower()
        return True

    def _body(self) -> bytes:
        if not self.chunked:
            body, self.raw = self.raw, b""
            return body
        parts = []
        while (line_end := self.raw.find(b"\r\n")) >= 0:
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if size == 0:
                self._end()
                break
            start = line_end + 2
            if len(self.raw) < start + size + 2:
                break  # the rest of this chunk is still on its way
            parts.append(self.raw[start : start + size])
            self.raw = self.raw[start + size + 2 :]
        return b"".join(parts)

    def _end(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


# ------------------------------------------------------------------------------ the probes


@dataclass(frozen=True)
class ProbeTarget:
    """Where probe orders go: the board's site, a destination and a product of the demo data."""

    site: str
    site_id: int
    destination: str
    sku: str
    tag: str  # unique per run: every probe number is PRB<tag>-<n>

    @property
    def pattern(self) -> re.Pattern[bytes]:
        return re.compile(rb"PRB" + self.tag.encode() + rb"-(\d+)")


@dataclass(frozen=True)
class Probe:
    number: int
    sent_at: float  # monotonic time the request was sent
    answered_at: float  # monotonic time of the 201
    status: int
    order_id: int | None


class Prober:
    """Posts one probe order every `every` seconds from its own thread, until stopped."""

    def __init__(self, base_url: str, headers: dict[str, str], target: ProbeTarget, every: float) -> None:
        self.base_url, self.headers, self.target, self.every = base_url, headers, target, every
        self.probes: list[Probe] = []
        self._next = 1

    def run(self, stop: threading.Event) -> list[Probe]:
        """Probes of this call (the numbering goes on across calls)."""
        mine: list[Probe] = []
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                mine.append(self._post(client))
                stop.wait(max(PROBE_GAP_SECONDS, self.every - (time.monotonic() - started)))
        self.probes += mine
        return mine

    def _post(self, client: httpx.Client) -> Probe:
        number, self._next = self._next, self._next + 1
        # Due long ago, and the later the probe the earlier it was due: it is first of the late orders,
        # whatever earlier runs left in the database.
        due = EPOCH - timedelta(seconds=time.time())
        body = {
            "site": self.target.site,
            "destination": self.target.destination,
            "due_at": due.isoformat(),
            "lines": [{"product": self.target.sku, "quantity": 1}],
            "number": f"PRB{self.target.tag}-{number}",
        }
        key = f"probe-{self.target.tag}-{number}"
        sent_at = time.monotonic()
        response = client.post(ORDERS_PATH, json=body, headers={"Idempotency-Key": key})
        answered_at = time.monotonic()
        order_id = response.json().get("id") if response.status_code == 201 else None
        return Probe(number, sent_at, answered_at, response.status_code, order_id)

    def cancel_all(self) -> int:
        """Cancel the probe orders (they would stay late in a reused database); how many were."""
        cancelled = 0
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            for probe in self.probes:
                if probe.order_id is not None:
                    path = f"{ORDERS_PATH}/{probe.order_id}/cancel"
                    key = f"probe-{self.target.tag}-{probe.number}-cancel"
                    cancelled += client.post(path, headers={"Idempotency-Key": key}).status_code == 200
        return cancelled


class NotifyLog:
    """The live events as PostgreSQL delivers them to any listener: when each probe's NOTIFY went out."""

    def __init__(self, site_id: int) -> None:
        self.item = f"{site_id}:{Topic.ORDERS.value}"
        self.heard: list[float] = []  # monotonic times of the payloads naming the board site's orders
        self._connection: asyncpg.Connection | None = None

    async def start(self, urls: DatabaseUrls) -> None:
        self._connection = await asyncpg.connect(urls.libpq)
        await self._connection.add_listener(CHANNEL, self._heard)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        if self.item in str(payload).split():
            self.heard.append(time.monotonic())

    def heard_at(self, probe: Probe) -> float | None:
        """The first NOTIFY naming the site's orders after the probe was sent (only probes change them)."""
        return next((t for t in self.heard if t >= probe.sent_at), None)

    def committed_by(self, probe: Probe) -> float:
        """A moment the probe's commit had happened by: its 201 read, or its NOTIFY heard if earlier."""
        heard = self.heard_at(probe)
        return probe.answered_at if heard is None else min(probe.answered_at, heard)


async def _probe_target(urls: DatabaseUrls) -> ProbeTarget:
    conn = await asyncpg.connect(urls.libpq)
    try:
        site_id = await conn.fetchval("SELECT id FROM sites WHERE code = $1", BOARD_SITE)
        destination = await conn.fetchval(
            "SELECT code FROM destinations WHERE is_active ORDER BY code LIMIT 1"
        )
        sku = await conn.fetchval("SELECT sku FROM products WHERE is_active ORDER BY sku LIMIT 1")
    finally:
        await conn.close()
    if site_id is None or destination is None or sku is None:
        raise RuntimeError("the bench database has no active destination or product for the probe orders")
    return ProbeTarget(BOARD_SITE, site_id, destination, sku, f"{int(time.time()) % 100_000:05d}")


# ------------------------------------------------------------------------------ one measured run


@dataclass
class Opening:
    subscribers: int
    ready: int
    seconds: float
    rss_before: int
    rss_after: int
    failures: Counter[str]

    @property
    def per_subscriber(self) -> float:
        return (self.rss_after - self.rss_before) / max(self.ready, 1)


@dataclass
class Measured:
    """One wrk run of the writes, with boards connected or none."""

    boards: bool
    run: Run
    answers: Answers
    probes: list[Probe]
    server_cpu_s: float
    bench_cpu_s: float  # this process: the subscribers, the probes
    machine_busy: float  # share of the machine's CPU time not idle during the run (all processes)
    opening: Opening | None = None
    delays_ms: list[float] = field(default_factory=list)  # one per (probe, subscriber) received
    from_201_ms: list[float] = field(default_factory=list)  # the same pairs, from the 201 read
    notify_ms: list[float] = field(default_factory=list)  # one per probe: 201 to its NOTIFY heard
    missed: int = 0  # (probe, subscriber) pairs never received
    missed_by: int = 0  # subscribers that missed at least one probe
    ended: Counter[str] = field(default_factory=Counter)  # streams that ended or failed during the run
    events: Counter[str] = field(default_factory=Counter)
    event_bytes: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0


def _worker_pids(server: Server) -> list[int]:
    """granian's worker processes (the server's children); the server itself if it has none."""
    root = psutil.Process(server.process.pid)
    children = root.children(recursive=True)
    return [p.pid for p in children] or [root.pid]


def _rss(pids: list[int]) -> int:
    """VmRSS of the processes, in bytes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _busy_share(before: Any, after: Any) -> float:
    """The share of all cores' time spent on anything but idling between two `psutil.cpu_times()`."""
    spent = {name: getattr(after, name) - getattr(before, name) for name in after._fields}
    total = sum(spent.values()) - spent.get("guest", 0) - spent.get("guest_nice", 0)  # inside user, nice
    return 1 - (spent["idle"] + spent.get("iowait", 0)) / total if total > 0 else float("nan")


@dataclass
class Bench:
    args: argparse.Namespace
    urls: DatabaseUrls
    server: Server
    cookie: str
    write_headers: dict[str, str]
    script: Path
    key_prefix: str
    work: Path
    prober: Prober
    notifies: NotifyLog
    answered: list[int] = field(default_factory=list)  # movement ids of every 201 (for the check)

    def wrk(self, tag: str, duration: float) -> tuple[Run, Answers]:
        out = self.work / f"answers-{tag}"
        run = run_wrk(
            self.server.base_url + MOVEMENTS_PATH,
            duration=duration,
            connections=self.args.clients,
            headers=self.write_headers,
            script=self.script,
            script_args=(f"{self.key_prefix}-{tag}", str(out)),
        )
        answers = read_answers(out)
        self.answered += answers.movement_ids
        return run, answers

    async def measure(self, tag: str, boards: bool) -> Measured:
        fleet = Fleet(
            self.server.port,
            f"/sites/{BOARD_SITE}/board/events",
            self.cookie,
            self.prober.target.pattern,
        )
        opening = None
        try:
            if boards:
                opening = await self._open(fleet)
            server_cpu, bench_cpu = tree_cpu(self.server.process.pid), own_cpu()
            machine = psutil.cpu_times()
            stop = threading.Event()
            probing = asyncio.create_task(asyncio.to_thread(self.prober.run, stop))
            try:
                run, answers = await asyncio.to_thread(self.wrk, tag, self.args.duration)
            finally:
                stop.set()
                probes = await probing
            server_cpu = tree_cpu(self.server.process.pid) - server_cpu
            busy = _busy_share(machine, psutil.cpu_times())
            if boards:
                await asyncio.sleep(GRACE_SECONDS)  # the last probes' events are still on their way
            bench_cpu = own_cpu() - bench_cpu
            measured = Measured(boards, run, answers, probes, server_cpu, bench_cpu, busy, opening)
            measured.notify_ms = [
                1000 * (heard - p.answered_at)
                for p in probes
                if p.status == 201 and (heard := self.notifies.heard_at(p)) is not None
            ]
            if boards:
                self._delays(measured, fleet, self.notifies)
        finally:
            await fleet.close()
        return measured

    async def _open(self, fleet: Fleet) -> Opening:
        pids = _worker_pids(self.server)
        # One board first, so the drawings and the templates are made before the memory is read.
        warm = Fleet(self.server.port, fleet.path, fleet.cookie, fleet.probe_pattern)
        await warm.open(1)
        await warm.close()
        if warm.subscribers[0].failure:
            raise RuntimeError(f"GET {fleet.path}: {warm.subscribers[0].failure}")
        await asyncio.sleep(1)
        before = _rss(pids)
        seconds = await fleet.open(self.args.subscribers)
        await asyncio.sleep(1)
        after = _rss(pids)
        failures = Counter(s.failure for s in fleet.subscribers if s.failure)
        opening = Opening(self.args.subscribers, len(fleet.ready), seconds, before, after, failures)
        _log(
            f"{opening.ready}/{opening.subscribers} subscribers got their {len(PANEL_NAMES)} panels in "
            f"{seconds:.1f}s; worker RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB "
            f"(pids {', '.join(map(str, pids))})" + (f"; FAILED: {dict(failures)}" if failures else "")
        )
        return opening

    @staticmethod
    def _delays(measured: Measured, fleet: Fleet, notifies: NotifyLog) -> None:
        answered = [(p, notifies.committed_by(p)) for p in measured.probes if p.status == 201]
        for subscriber in fleet.ready:
            missed = 0
            for probe, committed in answered:
                at = subscriber.received.get(probe.number)
                if at is None:
                    missed += 1
                else:
                    measured.delays_ms.append(1000 * (at - committed))
                    measured.from_201_ms.append(1000 * (at - probe.answered_at))
            measured.missed += missed
            measured.missed_by += missed > 0
            measured.events.update(subscriber.events)
            measured.event_bytes.update(subscriber.event_bytes)
            measured.body_bytes += subscriber.body_bytes
            if subscriber.failure:
                measured.ended[subscriber.failure] += 1


async def _rounds(bench: Bench) -> list[Measured]:
    results: list[Measured] = []
    await bench.notifies.start(bench.urls)
    try:
        await _measured_rounds(bench, results)
    finally:
        await bench.notifies.stop()
    return results


async def _measured_rounds(bench: Bench, results: list[Measured]) -> None:
    args = bench.args
    if args.warmup > 0:
        _log(f"warm-up: {args.warmup:g}s of writes, no board")
        await asyncio.to_thread(bench.wrk, "warmup", args.warmup)
    for n in range(args.rounds):
        order = (False, True) if n % 2 == 0 else (True, False)  # alternate which goes first
        for boards in order:
            tag = f"r{n + 1}-{'boards' if boards else 'none'}"
            m = await bench.measure(tag, boards)
            results.append(m)
            flag = f"  ({m.run.errors} errors!)" if m.run.errors else ""
            line = (
                f"round {n + 1}/{args.rounds} {'boards' if boards else 'none':<6} "
                f"{m.run.requests_per_s:7.1f} writes/s  p50 {m.run.p50_ms:6.1f} ms  "
                f"p99 {m.run.p99_ms:6.1f} ms  {len(m.probes)} probes{flag}"
            )
            if m.notify_ms:
                line += f"  NOTIFY p50 {_pct(m.notify_ms, 50):.0f} ms"
            if boards and m.delays_ms:
                line += (
                    f"  delay p50 {_pct(m.delays_ms, 50):.0f} ms p95 {_pct(m.delays_ms, 95):.0f} ms, "
                    f"{m.missed} missed"
                )
            _log(line)


# ------------------------------------------------------------------------------ set-up and report


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    wrk_path()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # pgserver's platformdirs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        results, check, cancelled = _bench(args)
    except KeyboardInterrupt:
        print("\ninterrupted: server and database stopped", file=sys.stderr)
        return 130
    _report(args, results, time.monotonic() - started)
    print(f"{'CHECK OK' if check.ok else 'CHECK FAILED'}: every movement written by the bench")
    for line in check.lines():
        print(f"      {line}")
    print(f"probe orders cancelled afterwards: {cancelled}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.boards", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=SUBSCRIBERS, help=f"(default {SUBSCRIBERS})")
    parser.add_argument("--duration", type=float, default=20, help="seconds per wrk run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (none, boards) (default 2)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured writes (default 3)")
    parser.add_argument(
        "--clients", type=int, default=WRITE_CLIENTS, help=f"wrk connections (default {WRITE_CLIENTS})"
    )
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between probes (default 0.5)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="demo data and stock seed")
    args = parser.parse_args(argv)
    if min(args.subscribers, args.duration, args.rounds, args.clients) < 1 or args.probe_every <= 0:
        parser.error("--subscribers, --duration, --rounds and --clients must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _bench(args: argparse.Namespace) -> tuple[list[Measured], WriteCheck, int]:
    with bench_database(_log) as database, tempfile.TemporaryDirectory(prefix="sdbench-boards-") as folder:
        work = Path(folder)
        prepare(database.urls, args.seed, _log)
        plan: StockPlan = prepare_stock(database.urls, args.seed, _log)
        target = asyncio.run(_probe_target(database.urls))
        first_movement = asyncio.run(movement_high_mark(database.urls))
        port = free_port()
        command, env = ours_command(port, database.urls)
        with running("ours", command, env, port, "/health/live", work) as server:
            _log(f"server up: {server.base_url}, 1 granian worker")
            cookies = log_in(server)
            token = api_token(server.base_url)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            prefix = f"sdbb{int(time.time())}"
            answered: list[int] = []
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                body = movement_body(random.Random(args.seed), plan.spread[0])
                answered.append(post_movement(client, body, f"{prefix}-check"))
            bench = Bench(
                args,
                database.urls,
                server,
                "; ".join(f"{k}={v}" for k, v in cookies.items()),
                headers,
                writes_script(plan.spread, work, "writes"),
                prefix,
                work,
                Prober(server.base_url, headers, target, args.probe_every),
                NotifyLog(target.site_id),
                answered,
            )
            _log(
                f"{args.subscribers} subscribers of /sites/{BOARD_SITE}/board/events; writes: "
                f"{args.clients} wrk connections over {len(plan.spread)} slots; a probe order every "
                f"{args.probe_every:g}s (PRB{target.tag}-<n>, destination {target.destination})"
            )
            results = asyncio.run(_rounds(bench))
            cancelled = bench.prober.cancel_all()
            _server_log_warnings(server)
        check = verify_writes(database.urls, first_movement, prefix, bench.answered)
    return results, check, cancelled


def _server_log_warnings(server: Server) -> None:
    lines = [line for line in server.log_tail(2000).splitlines() if line.strip()]
    if lines:
        _log(f"server log ({len(lines)} lines, last 15):")
        for line in lines[-15:]:
            print(f"      {line}")


def _pct(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def _report(args: argparse.Namespace, results: list[Measured], elapsed: float) -> None:
    none = [m for m in results if not m.boards]
    boards = [m for m in results if m.boards]
    print()
    print(
        f"Live boards bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.subscribers} subscribers of "
        f"/sites/{BOARD_SITE}/board/events on 1 granian worker, {args.rounds} rounds x {args.duration:g}s "
        f"of writes ({args.clients} wrk connections), a probe order every {args.probe_every:g}s"
    )
    print()
    _runs_table(results)
    _memory(boards)
    _delays_report(boards, none)
    _cpu_report(boards, none)
    ratios = [
        b.run.requests_per_s / n.run.requests_per_s for b, n in _pairs(results) if n.run.requests_per_s > 0
    ]
    ratio = statistics.median(ratios) if ratios else float("nan")
    verdict = "PASS" if ratios and ratio >= TARGET_RATIO else "MISS"
    w_none = statistics.median(m.run.requests_per_s for m in none) if none else float("nan")
    w_boards = statistics.median(m.run.requests_per_s for m in boards) if boards else float("nan")
    print(
        f"{verdict}: writes with boards at {ratio:.0%} of the writes with none "
        f"(target >= {TARGET_RATIO:.0%}): {w_boards:.1f} vs {w_none:.1f} writes/s (medians; per round "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )
    print(f"bench run time: {elapsed:.0f}s")


def _runs_table(results: list[Measured]) -> None:
    header = (
        f"{'run':<10} {'writes/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'app CPU ms/write':>17} "
        f"{'bench CPU s':>12} {'machine busy':>13} {'probes':>7} {'probe p50 ms':>13}  answers"
    )
    print(header)
    print("-" * len(header))
    for n, m in enumerate(results):
        statuses = ", ".join(f"{count} x {status}" for status, count in sorted(m.answers.statuses.items()))
        probe_ms = [1000 * (p.answered_at - p.sent_at) for p in m.probes]
        print(
            f"{'r' + str(n // 2 + 1) + (' boards' if m.boards else ' none'):<10} "
            f"{m.run.requests_per_s:9.1f} {m.run.p50_ms:7.1f} {m.run.p99_ms:7.1f} "
            f"{1000 * m.server_cpu_s / max(m.run.requests, 1):17.2f} {m.bench_cpu_s:12.1f} "
            f"{m.machine_busy:13.0%} "
            f"{len(m.probes):7d} {_pct(probe_ms, 50):13.0f}  {statuses}"
        )
    print()


def _memory(boards: list[Measured]) -> None:
    openings = [m.opening for m in boards if m.opening is not None]
    if not openings:
        return
    first = openings[0]
    print(
        f"INFO: memory per subscriber {first.per_subscriber / 1024:.1f} KiB (worker RSS "
        f"{first.rss_before / 2**20:.1f} -> {first.rss_after / 2**20:.1f} MiB for {first.ready}/"
        f"{first.subscribers} subscribers with their panels, opened in {first.seconds:.1f}s)"
    )
    for later in openings[1:]:
        print(
            f"      a later opening (freed memory reused): {later.per_subscriber / 1024:.1f} KiB each, "
            f"{later.ready}/{later.subscribers} ready in {later.seconds:.1f}s"
        )
    failures = sum((o.failures for o in openings), Counter[str]())
    if failures:
        print(f"      SUBSCRIBERS THAT NEVER OPENED: {dict(failures)}")


def _delays_report(boards: list[Measured], none: list[Measured]) -> None:
    delays = [d for m in boards for d in m.delays_ms]
    missed = sum(m.missed for m in boards)
    probes = sum(len([p for p in m.probes if p.status == 201]) for m in boards)
    p95 = _pct(delays, 95)
    verdict = "PASS" if delays and p95 <= TARGET_P95_MS and missed == 0 else "MISS"
    print(
        f"{verdict}: commit to receipt p50 {_pct(delays, 50):.0f} ms, p95 {p95:.0f} ms, p99 "
        f"{_pct(delays, 99):.0f} ms, max {max(delays, default=float('nan')):.0f} ms "
        f"(target p95 <= {TARGET_P95_MS:g} ms); {len(delays)} samples from {probes} probes; "
        f"{missed} (probe, subscriber) pairs never received"
    )
    from_201 = [d for m in boards for d in m.from_201_ms]
    if from_201:
        print(
            f"      counted from the probe's 201 as read (later than its commit when the worker is slow to "
            f"answer): p50 {_pct(from_201, 50):.0f} ms, p95 {_pct(from_201, 95):.0f} ms, "
            f"p99 {_pct(from_201, 99):.0f} ms"
        )
    for label, runs in (("with boards", boards), ("with none", none)):
        notify = [d for m in runs for d in m.notify_ms]
        if notify:
            print(
                f"      the probe's NOTIFY heard by a listener of this process, after its 201 ({label}): "
                f"p50 {_pct(notify, 50):.0f} ms, p95 {_pct(notify, 95):.0f} ms ({len(notify)} probes)"
            )
    if missed:
        missed_by = sum(m.missed_by for m in boards)
        print(f"      LOSS: {missed} (probe, subscriber) pairs never received, by {missed_by} subscribers")
    ended = sum((m.ended for m in boards), Counter[str]())
    if ended:
        print(f"      STREAMS ENDED OR FAILED while measured: {dict(ended)}")
    ready = sum(m.opening.ready for m in boards if m.opening is not None)
    events = sum((m.events for m in boards), Counter[str]())
    sizes = sum((m.event_bytes for m in boards), Counter[str]())
    if ready:
        received = sum(m.body_bytes for m in boards)
        print(
            "      events per subscriber and run (opening included; mean size): "
            + ", ".join(
                f"{name} {count / ready:.1f} ({sizes[name] / count / 1024:.1f} KiB)"
                for name, count in sorted(events.items())
            )
            + f"; {received / ready / 1024:.0f} KiB of stream each"
        )


def _cpu_report(boards: list[Measured], none: list[Measured]) -> None:
    """The worker's CPU beyond what the same writes cost with no board, per probe and per subscriber."""
    if not boards or not none:
        return
    per_write = statistics.median(m.server_cpu_s / max(m.run.requests, 1) for m in none)
    extra = sum(m.server_cpu_s - m.run.requests * per_write for m in boards)
    probes = sum(len(m.probes) for m in boards)
    pairs = sum(len(m.probes) * (m.opening.ready if m.opening else 0) for m in boards)
    seconds = sum(m.run.requests / max(m.run.requests_per_s, 1e-9) for m in boards)
    print(
        f"      the worker's CPU for the boards (beyond the writes' own, at the no-board rate): "
        f"{extra:.1f}s over {seconds:.0f}s of runs = {1000 * extra / max(probes, 1):.0f} ms per probe, "
        f"{1e6 * extra / max(pairs, 1):.0f} us per (probe, subscriber), keep-alives and ticks included"
    )


def _pairs(results: list[Measured]) -> list[tuple[Measured, Measured]]:
    """(boards, none) of each round."""
    pairs = []
    for i in range(0, len(results) - 1, 2):
        a, b = results[i], results[i + 1]
        pairs.append((a, b) if a.boards else (b, a))
    return pairs


if __name__ == "__main__":
    sys.exit(main())
