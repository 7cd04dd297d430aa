"""`python -m bench`: our pages against the fortunes baseline, our writes against pgbench, same run.

Starts PostgreSQL, our app and the baseline (granian, one worker each), logs in once, then drives
each target with wrk in interleaved rounds and prints medians and ratios: pages against the fortunes
page, movement writes through the API against pgbench's TPC-B-like transaction on the same server.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx

from bench.cpu import tree_cpu
from bench.database import BenchDatabase, bench_database, prepare
from bench.fortunes_app import MARKER
from bench.fortunes_app import PATH as FORTUNES_PATH
from bench.load import Run, run_wrk, wrk_path
from bench.pgbench import SCALE, initialise, pgbench_path, pgbench_urls, run_pgbench
from bench.servers import Server, baseline_command, free_port, log_in, ours_command, running
from bench.stock import (
    HOT_PRODUCTS,
    MOVEMENTS_PATH,
    SEARCH_SITE,
    Answers,
    StockPlan,
    WriteCheck,
    api_token,
    check_search,
    movement_body,
    movement_high_mark,
    post_movement,
    prepare_stock,
    read_answers,
    search_paths,
    search_script,
    verify_writes,
    writes_script,
)
from bench.trace import Trace, statement_log, trace

TARGET_RATIO = 0.70  # the goal: a DB-backed fragment of ours at >= 70 % of the baseline
WRITE_RATIO = 0.50  # movement writes through the API at >= 50 % of pgbench's TPS ...
WRITE_P99_MS = 50.0  # ... with a p99 under 50 ms, at 16 clients
WRITE_CLIENTS = 16
DEMO_SEED = 20261125
TRACE_REQUESTS = 50
APP_NAME = "dispatch-web"  # our server's application_name in pg_stat_activity and the server log


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    server: str  # "baseline", "ours" or "pgbench"
    path: str
    marker: str  # must be in the body, so a redirect or an error page is never what gets measured
    logged_in: bool = False
    htmx: bool = False
    bearer: bool = False


BASELINE = Target("fortunes", "baseline fortunes (1 query)", "baseline", FORTUNES_PATH, MARKER)
PAGES = (
    Target("live", "GET /health/live (no login, no DB)", "ours", "/health/live", '"status":"ok"'),
    Target("login", "GET /login (template, no DB)", "ours", "/login", 'name="_csrf_token"'),
    Target(
        "pipeline",
        "GET /home/pipeline (login + DB)",
        "ours",
        "/home/pipeline",
        'id="pipeline"',
        logged_in=True,
        htmx=True,
    ),
    Target(
        "search",
        f"GET /sites/{SEARCH_SITE}/stock?q= (fragment)",
        "ours",
        f"/sites/{SEARCH_SITE}/stock",
        'id="stock-results"',
        logged_in=True,
        htmx=True,
    ),
)
DB_FRAGMENTS = ("pipeline", "search")  # each is held to TARGET_RATIO
PGBENCH = Target("pgbench", f"pgbench tpcb-like (scale {SCALE})", "pgbench", "", "")
WRITES = (
    Target("writes", "POST /api/v1/movements (spread)", "ours", MOVEMENTS_PATH, "", bearer=True),
    Target(
        "hot", f"POST /api/v1/movements (hot: {HOT_PRODUCTS} SKUs)", "ours", MOVEMENTS_PATH, "", bearer=True
    ),
)
SUITES = {
    "pages": ("live", "login", "pipeline"),
    "stock": ("search", "writes", "hot"),
    "all": tuple(t.key for t in (*PAGES, *WRITES)),
}
STOCK_KEYS = {"search", "writes", "hot"}


@dataclass
class Measured:
    target: Target
    runs: list[Run] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per request
    pg_cpu_ms: list[float] = field(default_factory=list)  # per request
    statuses: Counter[int] = field(default_factory=Counter)  # writes: every answer, warm-up included


@dataclass
class Outcome:
    pages: list[Measured] = field(default_factory=list)
    writes: list[Measured] = field(default_factory=list)
    check: WriteCheck | None = None
    traces: list[Trace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class WriteState:
    """What the write bench needs to check itself at the end."""

    prefix: str  # every Idempotency-Key of this run starts with it
    first_movement: int  # the ledger's last id before the first write
    headers: dict[str, str]
    answered: list[int] = field(default_factory=list)  # movement ids of every 201 read


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    wrk_path()  # fail fast with the install hint
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # pgserver's platformdirs
    keys = args.only or set(SUITES[args.suite])
    pages = [t for t in PAGES if t.key in keys]
    writes = [t for t in WRITES if t.key in keys]
    if writes:
        pgbench_path()
    started = time.monotonic()
    # Ctrl+C and `kill` both unwind through the clean-ups (even when started with SIGINT ignored, as by `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        outcome = _bench(args, [BASELINE, *pages] if pages else [], [PGBENCH, *writes] if writes else [])
    except KeyboardInterrupt:
        print("\ninterrupted: servers and database stopped", file=sys.stderr)
        return 130
    _report(outcome, args, time.monotonic() - started)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8, help="seconds per measured run (default 8)")
    parser.add_argument(
        "--connections", type=int, default=32, help="wrk open connections for the pages (default 32)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=WRITE_CLIENTS,
        help=f"wrk connections for the writes and pgbench clients (default {WRITE_CLIENTS})",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of unmeasured load per target (default 3)"
    )
    parser.add_argument(
        "--suite",
        choices=sorted(SUITES),
        default="all",
        help="pages: "
        + ", ".join(SUITES["pages"])
        + "; stock: "
        + ", ".join(SUITES["stock"])
        + " (default all)",
    )
    parser.add_argument(
        "--only",
        type=lambda s: {x.strip() for x in s.split(",") if x.strip()},
        default=None,
        help="comma-separated subset of: "
        + ", ".join(SUITES["all"])
        + " (replaces --suite; the baselines always run)",
    )
    parser.add_argument(
        "--no-trace",
        dest="trace",
        action="store_false",
        help="skip counting statements per request in the server log (embedded PostgreSQL only)",
    )
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="demo data and stock seed")
    args = parser.parse_args(argv)
    unknown = (args.only or set()) - set(SUITES["all"])
    if unknown:
        parser.error(f"unknown target(s) for --only: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.clients < 1:
        parser.error("--rounds, --duration, --connections and --clients must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _bench(args: argparse.Namespace, pages: list[Target], writes: list[Target]) -> Outcome:
    outcome = Outcome()
    with bench_database(_log) as database, tempfile.TemporaryDirectory(prefix="sdbench-work-") as folder:
        work = Path(folder)
        prepare(database.urls, args.seed, _log)
        plan = None
        if STOCK_KEYS & {t.key for t in pages + writes}:
            plan = prepare_stock(database.urls, args.seed, _log)
        if writes:
            started = time.monotonic()
            initialise(database.urls)
            _log(
                f"pgbench -i -s {SCALE} in {pgbench_urls(database.urls).database_name}: "
                f"{time.monotonic() - started:.1f}s"
            )
        with _servers(database, work) as servers:
            cookies = log_in(servers["ours"])
            _log("logged in as the bench supervisor")
            state = None
            if pages:
                outcome.pages = _page_rounds(args, pages, servers, database, cookies, plan, work)
            if writes:
                assert plan is not None
                state = _write_state(servers["ours"], database)
                outcome.writes = _write_rounds(args, writes, servers["ours"], database, plan, state, work)
            if args.trace and plan is not None:
                if database.server_log is None:
                    outcome.notes.append("statements per request: embedded PostgreSQL only (not counted)")
                else:
                    outcome.traces = _traces(
                        args, database, servers["ours"], cookies, plan, state, pages + writes
                    )
            if state is not None:
                outcome.check = verify_writes(
                    database.urls, state.first_movement, state.prefix, state.answered
                )
    return outcome


@contextlib.contextmanager
def _servers(database: BenchDatabase, logs: Path) -> Iterator[dict[str, Server]]:
    with contextlib.ExitStack() as stack:
        port = free_port()
        command, env = ours_command(port, database.urls)
        ours = stack.enter_context(running("ours", command, env, port, "/health/live", logs))
        port = free_port()
        command, env = baseline_command(port, database.urls)
        baseline = stack.enter_context(running("baseline", command, env, port, FORTUNES_PATH, logs))
        _log(f"servers up: ours {ours.base_url}, baseline {baseline.base_url}")
        yield {"ours": ours, "baseline": baseline}


# ------------------------------------------------------------------------------ the rounds


def _rounds(
    args: argparse.Namespace,
    targets: list[Target],
    database: BenchDatabase,
    server_pid: Callable[[Target], int],
    measure: Callable[[Target, str], Run],
) -> list[Measured]:
    """Warm-up, then interleaved rounds: the baseline first, then ours, whose order rotates."""
    if args.warmup > 0:
        _log(f"warm-up: {args.warmup:g}s per target")
        for t in targets:
            measure(t, "warmup")
    results = {t.key: Measured(t) for t in targets}
    ours = targets[1:]
    for n in range(args.rounds):
        order = [targets[0], *ours[n % len(ours) :], *ours[: n % len(ours)]] if ours else targets
        for t in order:
            probe = _CpuProbe(server_pid(t), database.postmaster_pid)
            run = measure(t, f"r{n + 1}")
            server_s, pg_s = probe.elapsed()
            m = results[t.key]
            m.runs.append(run)
            m.server_cpu_ms.append(1000 * server_s / max(run.requests, 1))
            if pg_s is not None:
                m.pg_cpu_ms.append(1000 * pg_s / max(run.requests, 1))
            flag = f"  ({run.errors} errors!)" if run.errors else ""
            _log(
                f"round {n + 1}/{args.rounds} {t.key:<9} {run.requests_per_s:9.1f} req/s  "
                f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms{flag}"
            )
    return list(results.values())


def _page_rounds(
    args: argparse.Namespace,
    targets: list[Target],
    servers: dict[str, Server],
    database: BenchDatabase,
    cookies: dict[str, str],
    plan: StockPlan | None,
    work: Path,
) -> list[Measured]:
    headers = {t.key: _headers(t, cookies) for t in targets}
    scripts: dict[str, Path] = {}
    for t in targets:
        if t.key == "search":
            assert plan is not None
            paths = search_paths(plan.terms)
            finding = check_search(servers[t.server].base_url, headers[t.key], paths)
            kinds = Counter(kind for kind, _ in plan.terms)
            _log(
                f"search: {len(paths)} terms ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
                f"{finding} find a product"
            )
            scripts[t.key] = search_script(paths, work)
        else:
            _check(servers[t.server], t, headers[t.key])

    def measure(t: Target, tag: str) -> Run:
        return run_wrk(
            servers[t.server].base_url + t.path,
            duration=args.warmup if tag == "warmup" else args.duration,
            connections=args.connections,
            headers=headers[t.key],
            script=scripts.get(t.key),
        )

    _log(f"pages: {', '.join(t.key for t in targets)} ({args.connections} connections)")
    return _rounds(args, targets, database, lambda t: servers[t.server].process.pid, measure)


def _write_state(ours: Server, database: BenchDatabase) -> WriteState:
    token = api_token(ours.base_url)
    return WriteState(
        prefix=f"sdb{int(time.time())}",
        first_movement=asyncio.run(movement_high_mark(database.urls)),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def _write_rounds(
    args: argparse.Namespace,
    targets: list[Target],
    ours: Server,
    database: BenchDatabase,
    plan: StockPlan,
    state: WriteState,
    work: Path,
) -> list[Measured]:
    slots = {"writes": plan.spread, "hot": plan.hot}
    scripts = {t.key: writes_script(slots[t.key], work, t.key) for t in targets if t.key in slots}
    rng = random.Random(args.seed)
    with httpx.Client(base_url=ours.base_url, headers=state.headers, timeout=30) as client:
        for key in scripts:  # one request of each, checked, before the load
            body = movement_body(rng, slots[key][0])
            state.answered.append(post_movement(client, body, f"{state.prefix}-check-{key}"))
    answers: dict[str, Answers] = {key: Answers() for key in scripts}

    def measure(t: Target, tag: str) -> Run:
        duration = args.warmup if tag == "warmup" else args.duration
        if t.key == "pgbench":
            return run_pgbench(database.urls, duration=duration, clients=args.clients)
        out = work / f"answers-{tag}-{t.key}"
        run = run_wrk(
            ours.base_url + t.path,
            duration=duration,
            connections=args.clients,
            headers=state.headers,
            script=scripts[t.key],
            script_args=(f"{state.prefix}-{tag}-{t.key}", str(out)),
        )
        got = read_answers(out)
        answers[t.key].add(got)
        state.answered.extend(got.movement_ids)
        return run

    _log(f"writes: {', '.join(t.key for t in targets)} ({args.clients} clients)")
    results = _rounds(args, targets, database, lambda t: ours.process.pid, measure)  # pgbench: not shown
    for m in results:
        if m.target.key in answers:
            m.statuses = answers[m.target.key].statuses
    return results


# ------------------------------------------------------------------------------ checks and traces


def _headers(target: Target, cookies: dict[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if target.logged_in:  # a signed-in browser sends both cookies back
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if target.htmx:
        headers["HX-Request"] = "true"
    return headers


def _check(server: Server, target: Target, headers: dict[str, str]) -> None:
    response = httpx.get(server.base_url + target.path, headers=headers, timeout=30)
    if response.status_code != 200 or target.marker not in response.text:
        raise RuntimeError(
            f"{target.key}: GET {target.path} gave HTTP {response.status_code} without "
            f"{target.marker!r}:\n{response.text[:500]}"
        )


def _traces(
    args: argparse.Namespace,
    database: BenchDatabase,
    ours: Server,
    cookies: dict[str, str],
    plan: StockPlan,
    state: WriteState | None,
    targets: list[Target],
) -> list[Trace]:
    """Statements per request of the stock targets (and of pgbench's transaction), sequential requests."""
    assert database.server_log is not None
    keys = {t.key for t in targets}
    traces: list[Trace] = []
    n = TRACE_REQUESTS
    _log(f"counting statements per request (log_min_duration_statement = 0, {n} sequential requests each)")
    with statement_log(database.urls):
        if "search" in keys:
            search = next(t for t in PAGES if t.key == "search")
            paths = search_paths(plan.terms)[:n]

            def searches() -> None:
                with httpx.Client(base_url=ours.base_url, headers=_headers(search, cookies), timeout=30) as c:
                    for path in paths:
                        c.get(path).raise_for_status()

            traces.append(trace(database.server_log, "GET search fragment", APP_NAME, n, searches))
        if state is not None:
            rng = random.Random(args.seed)

            def posts() -> None:
                with httpx.Client(base_url=ours.base_url, headers=state.headers, timeout=30) as c:
                    for i in range(n):
                        body = movement_body(rng, rng.choice(plan.spread))
                        state.answered.append(post_movement(c, body, f"{state.prefix}-trace-{i}"))

            traces.append(trace(database.server_log, "POST /api/v1/movements", APP_NAME, n, posts))

            def tpcb() -> None:
                subprocess.run(
                    [
                        pgbench_path(),
                        "-n",
                        "-b",
                        "tpcb-like",
                        "-c",
                        "1",
                        "-t",
                        str(n),
                        pgbench_urls(database.urls).libpq,
                    ],
                    capture_output=True,
                    check=True,
                )

            traces.append(trace(database.server_log, "pgbench tpcb-like transaction", "pgbench", n, tpcb))
    return traces


class _CpuProbe:
    """CPU seconds spent by a server and by PostgreSQL (each a process tree) between two points."""

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self.server_pid, self.postmaster_pid = server_pid, postmaster_pid
        self.start = self._totals()

    def _totals(self) -> tuple[float, float | None]:
        pg = tree_cpu(self.postmaster_pid) if self.postmaster_pid else None
        return tree_cpu(self.server_pid), pg

    def elapsed(self) -> tuple[float, float | None]:
        server, pg = self._totals()
        start_server, start_pg = self.start
        return server - start_server, (pg - start_pg if pg is not None and start_pg is not None else None)


# ------------------------------------------------------------------------------ the report


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _table(results: list[Measured], unit: str) -> dict[str, list[float]]:
    """Print one table (the first row is the reference); returns each target's per-round ratios."""
    baseline = results[0]
    base_rps = [r.requests_per_s for r in baseline.runs]
    header = (
        f"{'target':<44} {unit:>9} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>20} "
        f"{'app CPU':>8} {'pg CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[float]] = {}
    for m in results:
        rps = [r.requests_per_s for r in m.runs]
        if m is baseline:
            ratio = "1.00 (reference)"
        else:
            ratios[m.target.key] = [ours / base for ours, base in zip(rps, base_rps, strict=True)]
            r = ratios[m.target.key]
            ratio = f"{_median(r):.2f} ({min(r):.2f}-{max(r):.2f})"
        errors = sum(r.errors for r in m.runs)
        pg = f"{_median(m.pg_cpu_ms):7.2f}" if m.pg_cpu_ms else f"{'-':>7}"
        app = f"{_median(m.server_cpu_ms):8.2f}" if m.target.server != "pgbench" else f"{'-':>8}"
        label = m.target.label if m is baseline else f"ours {m.target.label}"
        print(
            f"{label:<44} {_median(rps):9.1f} {_median([r.p50_ms for r in m.runs]):8.2f} "
            f"{_median([r.p99_ms for r in m.runs]):8.2f} {ratio:>20} {app} {pg}"
            + (f"  {errors} ERRORS" if errors else "")
        )
    print()
    return ratios


def _report(outcome: Outcome, args: argparse.Namespace, elapsed: float) -> None:
    print()
    print(
        f"Stock Dispatch bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.rounds} rounds x "
        f"{args.duration:g}s, 1 granian worker per server, wrk 1 thread"
    )
    print(
        "Medians over the rounds; ratio = ours / baseline of the same round (median, min-max). "
        "CPU = ms of CPU per request (per transaction for pgbench)."
    )
    print()
    if outcome.pages:
        print(f"Pages, {args.connections} connections, against the fortunes baseline:")
        ratios = _table(outcome.pages, "req/s")
        for key in DB_FRAGMENTS:
            if key in ratios:
                ratio = _median(ratios[key])
                verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
                label = next(t.label for t in PAGES if t.key == key)
                print(
                    f"{verdict}: DB-backed fragment {label} at {ratio:.0%} of the baseline "
                    f"(target >= {TARGET_RATIO:.0%})"
                )
        print()
    if outcome.writes:
        print(f"Writes, {args.clients} clients, against pgbench on the same PostgreSQL server:")
        ratios = _table(outcome.writes, "req|tx/s")
        for m in outcome.writes[1:]:
            ratio, p99 = _median(ratios[m.target.key]), _median([r.p99_ms for r in m.runs])
            verdict = "PASS" if ratio >= WRITE_RATIO and p99 < WRITE_P99_MS else "MISS"
            print(
                f"{verdict}: {m.target.label} at {ratio:.0%} of pgbench's TPS (target >= {WRITE_RATIO:.0%}), "
                f"p99 {p99:.1f} ms (target < {WRITE_P99_MS:g} ms)"
                + ("" if m.target.key == "writes" else "  [informational variant]")
            )
            statuses = ", ".join(f"{n} x {status}" for status, n in sorted(m.statuses.items()))
            print(f"      answers read by wrk (warm-up included): {statuses}")
        pg_base, pg_ours = _median(outcome.writes[0].pg_cpu_ms), _median(outcome.writes[1].pg_cpu_ms)
        if outcome.writes[0].pg_cpu_ms and outcome.writes[1].pg_cpu_ms:
            print(
                f"      PostgreSQL alone: {pg_ours:.2f} ms of CPU per movement, {pg_base:.2f} ms per TPC-B "
                f"transaction: even with a free app, the API would reach ~{pg_base / pg_ours:.0%} of pgbench"
            )
        print()
    if outcome.check is not None:
        print(f"{'CHECK OK' if outcome.check.ok else 'CHECK FAILED'}: every movement written by the bench")
        for line in outcome.check.lines():
            print(f"      {line}")
        print()
    for t in outcome.traces:
        for line in t.lines():
            print(line)
        print()
    for note in outcome.notes:
        print(note)
    print(f"bench run time: {elapsed:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
