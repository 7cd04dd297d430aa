"""`python -m bench`: our pages against the fortunes baseline, measured in the same run.

Starts PostgreSQL, our app and the baseline (granian, one worker each), logs in once, then drives
each target with wrk in interleaved rounds and prints medians and ratios. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import psutil

from bench.database import BenchDatabase, bench_database, prepare
from bench.fortunes_app import MARKER
from bench.fortunes_app import PATH as FORTUNES_PATH
from bench.load import Run, run_wrk, wrk_path
from bench.servers import Server, baseline_command, free_port, log_in, ours_command, running

TARGET_RATIO = 0.70  # the goal: a DB-backed fragment of ours at >= 70 % of the baseline
DEMO_SEED = 20261125


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    server: str  # "baseline" or "ours"
    path: str
    marker: str  # must be in the body, so a redirect or an error page is never what gets measured
    logged_in: bool = False
    htmx: bool = False


BASELINE = Target("fortunes", "baseline fortunes (1 query)", "baseline", FORTUNES_PATH, MARKER)
OURS = (
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
)
DB_FRAGMENT = "pipeline"


@dataclass
class Measured:
    target: Target
    runs: list[Run] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per request
    pg_cpu_ms: list[float] = field(default_factory=list)  # per request


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    wrk_path()  # fail fast with the install hint
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # pgserver's platformdirs
    targets = [BASELINE, *(t for t in OURS if not args.only or t.key in args.only)]
    started = time.monotonic()
    # Ctrl+C and `kill` both unwind through the clean-ups (even when started with SIGINT ignored, as by `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        results = _bench(args, targets)
    except KeyboardInterrupt:
        print("\ninterrupted: servers and database stopped", file=sys.stderr)
        return 130
    _report(results, args, time.monotonic() - started)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk open connections (default 32)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of unmeasured load per target (default 3)"
    )
    parser.add_argument(
        "--only",
        type=lambda s: {x.strip() for x in s.split(",") if x.strip()},
        default=None,
        help="comma-separated subset of: " + ", ".join(t.key for t in OURS) + " (the baseline always runs)",
    )
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="demo data seed")
    args = parser.parse_args(argv)
    unknown = (args.only or set()) - {t.key for t in OURS}
    if unknown:
        parser.error(f"unknown target(s) for --only: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _bench(args: argparse.Namespace, targets: list[Target]) -> list[Measured]:
    with bench_database(_log) as database, tempfile.TemporaryDirectory(prefix="sdbench-logs-") as logs:
        prepare(database.urls, args.seed, _log)
        with _servers(database, Path(logs)) as servers:
            cookies = log_in(servers["ours"])
            _log("logged in as the bench supervisor")
            headers = {t.key: _headers(t, cookies) for t in targets}
            for t in targets:
                _check(servers[t.server], t, headers[t.key])
            if args.warmup > 0:
                _log(f"warm-up: {args.warmup:g}s per target")
                for t in targets:
                    run_wrk(
                        servers[t.server].base_url + t.path,
                        duration=args.warmup,
                        connections=args.connections,
                        headers=headers[t.key],
                    )
            results = {t.key: Measured(t) for t in targets}
            ours = targets[1:]
            for n in range(args.rounds):
                # Baseline first, then ours; our order rotates so no target always follows the baseline.
                order = [targets[0], *ours[n % len(ours) :], *ours[: n % len(ours)]] if ours else targets
                for t in order:
                    server = servers[t.server]
                    probe = _CpuProbe(server.process.pid, database.postmaster_pid)
                    run = run_wrk(
                        server.base_url + t.path,
                        duration=args.duration,
                        connections=args.connections,
                        headers=headers[t.key],
                    )
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


class _CpuProbe:
    """CPU seconds spent by a server and by PostgreSQL between two points.

    A process tree's total is every live process's own time plus the time of the children it has
    reaped, so backends that PostgreSQL starts or ends during the run are counted too.
    """

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self.server_pid, self.postmaster_pid = server_pid, postmaster_pid
        self.start = self._totals()

    @staticmethod
    def _tree_cpu(pid: int) -> float:
        total = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
        return total

    def _totals(self) -> tuple[float, float | None]:
        pg = self._tree_cpu(self.postmaster_pid) if self.postmaster_pid else None
        return self._tree_cpu(self.server_pid), pg

    def elapsed(self) -> tuple[float, float | None]:
        server, pg = self._totals()
        start_server, start_pg = self.start
        return server - start_server, (pg - start_pg if pg is not None and start_pg is not None else None)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _report(results: list[Measured], args: argparse.Namespace, elapsed: float) -> None:
    baseline = results[0]
    base_rps = [r.requests_per_s for r in baseline.runs]
    print()
    print(
        f"Stock Dispatch bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.rounds} rounds x "
        f"{args.duration:g}s, {args.connections} connections, 1 granian worker per server, wrk 1 thread"
    )
    print(
        "Medians over the rounds; ratio = our req/s / baseline req/s of the same round (median, min-max). "
        "CPU = ms of CPU per request."
    )
    print()
    header = (
        f"{'target':<40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>20} "
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
        label = m.target.label if m is baseline else f"ours {m.target.label}"
        print(
            f"{label:<40} {_median(rps):9.1f} {_median([r.p50_ms for r in m.runs]):8.2f} "
            f"{_median([r.p99_ms for r in m.runs]):8.2f} {ratio:>20} {_median(m.server_cpu_ms):8.2f} {pg}"
            + (f"  {errors} ERRORS" if errors else "")
        )
    print()
    if DB_FRAGMENT in ratios:
        db_ratio = _median(ratios[DB_FRAGMENT])
        verdict = "PASS" if db_ratio >= TARGET_RATIO else "MISS"
        print(
            f"{verdict}: DB-backed fragment /home/pipeline at {db_ratio:.0%} of the baseline "
            f"(target >= {TARGET_RATIO:.0%})"
        )
    else:
        print("(DB-backed fragment not measured: --only excluded 'pipeline')")
    print(f"bench run time: {elapsed:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
