"""`python -m bench.profile`: where our CPU goes, per request, for the stock search and the movement writes.

Same database and data as `python -m bench` (embedded PostgreSQL or BENCH_DATABASE_URL, demo data, the
go-live stock), same settings as the bench's server, but the app runs in this process (Litestar's
AsyncTestClient, lifespan included) under cProfile with a CPU clock: waiting for PostgreSQL costs
nothing, so the figures are our own CPU. Requests are sequential. Prints the CPU per request by
package, then the functions with the most CPU of their own.

    python -m bench.profile                 # both, 300 requests each
    python -m bench.profile writes --requests 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import inspect
import io
import os
import pstats
import random
import re
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bench.database import BENCH_PASSWORD, BENCH_USER, bench_database, prepare
from bench.servers import CSRF_COOKIE
from bench.stock import MOVEMENTS_PATH, StockPlan, movement_body, prepare_stock, search_paths

DEMO_SEED = 20261125
WARMUP = 30
BASE_URL = "http://127.0.0.1:8000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help="search, writes (default both)")
    parser.add_argument("--requests", type=int, default=300, help="profiled requests of each (default 300)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    args = parser.parse_args(argv)
    what = args.what or ["search", "writes"]
    if set(what) - {"search", "writes"}:
        parser.error("profile what? search, writes")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    with bench_database(_log) as database:
        prepare(database.urls, args.seed, _log)
        plan = prepare_stock(database.urls, args.seed, _log)
        os.environ.update(
            {
                "DATABASE_URL": database.urls.libpq,
                "APP_ENV": "development",
                "SECURE_COOKIES": "false",
                "LOG_LEVEL": "WARNING",
                "SESSION_TOKEN_MINUTES": "60",
                "WEB_HOST": "127.0.0.1",
            }
        )
        asyncio.run(_profile(what, plan, args))
    return 0


def _log(message: str) -> None:
    print(f"[profile] {message}", flush=True)


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan by hand, in this thread (a test client would run the app in another one,
    out of the profiler's sight)."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    if (message := await outbox.get())["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"app startup failed: {message}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def _profile(what: list[str], plan: StockPlan, args: argparse.Namespace) -> None:
    import httpx

    from app.asgi import create_app

    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with (
        _lifespan(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as client,
    ):
        if "search" in what:
            (await client.get("/login")).raise_for_status()
            form = {
                "username": BENCH_USER,
                "password": BENCH_PASSWORD,
                "next": "/",
                "_csrf_token": client.cookies.get(CSRF_COOKIE),
            }
            answer = await client.post("/login", data=form, follow_redirects=False)
            if answer.status_code != 303:
                raise RuntimeError(f"login failed: HTTP {answer.status_code}\n{answer.text[:300]}")
            paths = search_paths(plan.terms)

            async def search(i: int) -> None:
                response = await client.get(paths[i % len(paths)], headers={"HX-Request": "true"})
                if response.status_code != 200 or 'id="stock-results"' not in response.text:
                    raise RuntimeError(f"search gave HTTP {response.status_code}")

            await _run("GET /sites/LYS/stock?q= (fragment)", search, args)
        if "writes" in what:
            answer = await client.post(
                "/api/v1/auth/token", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
            )
            token = answer.json()["access_token"]
            rng = random.Random(args.seed)
            run_id = f"prof{int(time.time())}"

            async def write(i: int) -> None:
                response = await client.post(
                    MOVEMENTS_PATH,
                    json=movement_body(rng, rng.choice(plan.spread)),
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{run_id}-{i}"},
                )
                # 409: a transfer out of a location an earlier request emptied (the bench counts them too)
                if response.status_code not in (201, 409):
                    raise RuntimeError(f"POST gave HTTP {response.status_code}: {response.text[:300]}")

            await _run("POST /api/v1/movements", write, args)


async def _run(label: str, request: Callable[[int], Awaitable[None]], args: argparse.Namespace) -> None:
    for i in range(WARMUP):
        await request(-1 - i)
    profiler = cProfile.Profile(time.process_time)
    cpu, wall = time.process_time(), time.perf_counter()
    profiler.enable()
    for i in range(args.requests):
        await request(i)
    profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = pstats.Stats(profiler)
    n = args.requests
    print()
    print(
        f"== {label}: {n} sequential requests, {1000 * cpu / n:.2f} ms CPU per request under the profiler "
        f"({1000 * wall / n:.2f} ms wall; the profiler itself roughly doubles the CPU)"
    )
    print("CPU per request by package (own time of their functions, ms):")
    for package, seconds in _by_package(stats)[:12]:
        print(f"  {1000 * seconds / n:7.3f}  {package}")
    print("Our plain (not async) functions by cumulative CPU per request (ms; nested ones overlap):")
    for name, seconds, calls in _app_functions(profiler, 15):
        print(f"  {1000 * seconds / n:7.3f}  {name}  ({calls / n:g} calls)")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(args.top)
    print(_trim(out.getvalue()))


_SITE = re.compile(r"site-packages/([^/]+)")
CLIENT = "httpx (the client, not the app)"


def _package(filename: str) -> str | None:
    """Where a function lives; None for C builtins (their time goes to their callers)."""
    if filename == "~" or filename.startswith("<"):
        return None
    if match := _SITE.search(filename):
        package = match[1].removesuffix(".py")
        return CLIENT if package == "httpx" else package
    if "/app/" in filename:
        return "app/" + filename.split("/app/", 1)[1].split("/", 1)[0]
    return "stdlib (asyncio, ...)"


def _by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own CPU by package; a C builtin's (isinstance, socket.send, ...) is split among its callers."""
    totals: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, callers) in raw.items():
        package = _package(filename)
        if package is not None:
            totals[package] += own
            continue
        shares = {caller: edge[2] for caller, edge in callers.items()}
        spread = sum(shares.values())
        for caller, share in shares.items():
            totals[_package(caller[0]) or "builtins"] += own * share / spread if spread else 0
        if not shares:
            totals["builtins"] += own
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _app_functions(profiler: cProfile.Profile, top: int) -> list[tuple[str, float, float]]:
    """Our plain functions by cumulative CPU, callees included: (name, seconds, calls).

    Coroutines are left out: cProfile sees a coroutine resumed many times (and SQLAlchemy's greenlets
    hide what runs under them), so their cumulative figures are partial.
    """
    rows = []
    for entry in profiler.getstats():
        code = entry.code
        if isinstance(code, str) or "/app/" not in code.co_filename or "site-packages" in code.co_filename:
            continue
        if code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
            continue
        name = f"{code.co_filename.split('/app/', 1)[1]}:{code.co_name}"
        rows.append((name, entry.totaltime, entry.callcount))
    return sorted(rows, key=lambda r: -r[1])[:top]


def _trim(report: str) -> str:
    """pstats' table without its preamble."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:]).rstrip()


if __name__ == "__main__":
    sys.exit(main())
