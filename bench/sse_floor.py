"""What one server-sent event costs granian's worker at the least: the floor under the boards' sends.

`python -m bench.sse_floor [--streams 1000] [--rate 4] [--seconds 8] [--rounds 3]` (under two minutes).

Two tiny ASGI apps hold `--streams` open event streams and send the same 3 KiB event to every stream
`--rate` times a second, on one shared `asyncio.Event`, as the boards' feeds ring theirs:

- `bare`: the ASGI callable itself, no framework: what granian and asyncio cost per send;
- `litestar`: the same stream as a Litestar `Stream` behind six pass-through `send` wrappers, as many as
  a board's stream goes through in our app (Litestar's before-send hook and exception handler twice,
  the security headers, CSRF).

Each is served like our app (granian, one worker, ASGI). The worker's CPU time over the measured
window, divided by the events the clients received in it, is what one event costs the worker. Both
apps run in each round, one after the other; printed are each round's figures, the medians, their
ratio, and what the boards bench's load (1,000 boards sent 2 events a second) costs one worker at that
floor. The clients are plain asyncio protocols of this process that count bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
from litestar import Litestar, get
from litestar.response import Stream

from bench.servers import HOST, PROJECT_ROOT, free_port, stop

EVENT = b"event: panel\ndata: " + b"x" * 3000 + b"\n\n"
WIRE_BYTES = len(EVENT) + len(f"{len(EVENT):x}\r\n\r\n")  # one HTTP/1.1 chunk per event
RATE_ENV = "BENCH_SSE_RATE"
WRAPPERS = 6

Send = Callable[[dict[str, Any]], Awaitable[None]]


# ------------------------------------------------------------------------------ the two apps (in granian)


class Ringer:
    """One bell for every stream, rung `rate` times a second once the first stream opens."""

    def __init__(self) -> None:
        self.bell = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._ring(float(os.environ[RATE_ENV])))

    async def _ring(self, rate: float) -> None:
        while True:
            await asyncio.sleep(1 / rate)
            rung, self.bell = self.bell, asyncio.Event()
            rung.set()

    async def events(self) -> Any:
        while True:
            await self.bell.wait()
            yield EVENT


RINGER = Ringer()


async def bare_app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    RINGER.start()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    async for event in RINGER.events():
        await send({"type": "http.response.body", "body": event, "more_body": True})


async def _lifespan(receive: Any, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def create_litestar_app() -> Any:
    @get("/")
    async def stream() -> Stream:
        RINGER.start()
        return Stream(RINGER.events(), media_type="text/event-stream")

    app = Litestar([stream])

    async def wrapped(scope: dict[str, Any], receive: Any, send: Send) -> None:
        for _ in range(WRAPPERS):
            send = _passing(send)
        await app(scope, receive, send)  # type: ignore[arg-type]

    return wrapped


def _passing(send: Send) -> Send:
    async def passed(message: dict[str, Any]) -> None:
        await send(message)

    return passed


# ------------------------------------------------------------------------------ the measurement


class Counting(asyncio.Protocol):
    received = 0  # all streams' bytes, this process

    def __init__(self, request: bytes) -> None:
        self.request = request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        Counting.received += len(data)


async def _measure(port: int, worker: psutil.Process, streams: int, seconds: float) -> tuple[float, int]:
    """Open the streams, let them settle, then (worker CPU seconds, events received) over `seconds`."""
    loop = asyncio.get_running_loop()
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    transports = [
        (await loop.create_connection(lambda: Counting(request), HOST, port))[0] for _ in range(streams)
    ]
    try:
        await asyncio.sleep(2)
        cpu, received = sum(worker.cpu_times()[:2]), Counting.received
        await asyncio.sleep(seconds)
        return sum(worker.cpu_times()[:2]) - cpu, (Counting.received - received) // WIRE_BYTES
    finally:
        for transport in transports:
            transport.close()


def _serve(target: str, factory: bool, rate: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1", "--host", HOST]
    command += ["--port", str(port), "--log-level", "warning", *(["--factory"] if factory else []), target]
    env = {**os.environ, RATE_ENV: str(rate), "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(  # its own process group, which `stop` ends whole (granian forks its worker)
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # up once its worker accepts connections
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{target} did not start")


def _one(name: str, target: str, factory: bool, args: argparse.Namespace) -> float:
    process, port = _serve(target, factory, args.rate)
    try:
        worker = psutil.Process(process.pid).children()[0]
        cpu, events = asyncio.run(_measure(port, worker, args.streams, args.seconds))
    finally:
        stop(process, grace=2)  # its streams never end on their own
    per_event = 1e6 * cpu / max(events, 1)
    expected = args.streams * args.rate * args.seconds
    print(
        f"  {name:9} {per_event:6.1f} us per event"
        f"  ({cpu:.2f} s of worker CPU for {events:,} events received, {expected:,.0f} nominal)"
    )
    return per_event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_floor", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=4.0, help="events per stream and second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    bare: list[float] = []
    framed: list[float] = []
    for n in range(1, args.rounds + 1):
        print(f"round {n}/{args.rounds}: {args.streams} streams, {args.rate:g} events a second each")
        bare.append(_one("bare", "bench.sse_floor:bare_app", False, args))
        framed.append(_one("litestar", "bench.sse_floor:create_litestar_app", True, args))
    floor, litestar = statistics.median(bare), statistics.median(framed)
    print(f"\nmedians: bare {floor:.1f} us, litestar {litestar:.1f} us per event (x{litestar / floor:.2f})")
    load = 1000 * 2
    print(
        f"1,000 boards sent 2 events a second: {load * floor / 1e4:.1f} % of a worker's core at the bare"
        f" floor, {load * litestar / 1e4:.1f} % through Litestar"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
