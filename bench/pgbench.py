"""The write baseline: pgbench's builtin TPC-B-like transaction on the same PostgreSQL server.

`pgbench -i -s 16` fills a database of its own (`dispatch_pgbench`, next to the bench database, so the
same server, the same disks, the same settings), then each run is `pgbench -b tpcb-like -c 16 -j 2 -T
<seconds>` with a per-transaction log, from which p50 and p99 are computed. The pgbench of the pgserver
wheel is used (PostgreSQL 16, a client: it also works against BENCH_DATABASE_URL's server).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.db.embedded import ensure_database
from app.db.urls import DatabaseUrls
from bench.load import Run

DATABASE = "dispatch_pgbench"
SCALE = 16  # 16 branches: one per client, pgbench's usual pairing of scale and clients
SCRIPT = "tpcb-like"


def pgbench_path() -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    bundled = Path(POSTGRES_BIN_PATH) / "pgbench"
    if bundled.exists():
        return str(bundled)
    path = shutil.which("pgbench")
    if path is None:
        raise SystemExit("pgbench not found (it ships with the pgserver wheel and with postgresql-client).")
    return path


def pgbench_urls(urls: DatabaseUrls) -> DatabaseUrls:
    return urls.with_database(DATABASE)


def initialise(urls: DatabaseUrls, scale: int = SCALE) -> None:
    """Create the pgbench database on the same server and (re)load its tables at `scale`."""
    target = pgbench_urls(urls)
    asyncio.run(ensure_database(target))
    done = subprocess.run(
        [pgbench_path(), "-i", "-q", "-s", str(scale), target.libpq],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench -i failed ({done.returncode}):\n{done.stderr or done.stdout}")


def run_pgbench(urls: DatabaseUrls, *, duration: float, clients: int, threads: int = 2) -> Run:
    """One timed TPC-B-like run: TPS without connection set-up, latencies from the per-transaction log."""
    with tempfile.TemporaryDirectory(prefix="sdbench-pgb-") as folder:
        prefix = Path(folder) / "tx"
        done = subprocess.run(
            [
                pgbench_path(),
                "-b",
                SCRIPT,
                "-c",
                str(clients),
                "-j",
                str(min(threads, clients)),
                "-T",
                str(max(1, round(duration))),
                "--log",
                f"--log-prefix={prefix}",
                pgbench_urls(urls).libpq,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr or done.stdout}")
        latencies_ms = sorted(
            value for log in Path(folder).glob("tx.*") for value in _latencies_ms(log.read_text())
        )
    return parse(done.stdout, latencies_ms)


def _latencies_ms(log: str) -> list[float]:
    """Per-transaction log lines: `client_id transaction_no time_us script_no epoch epoch_us`."""
    return [int(line.split()[2]) / 1000 for line in log.splitlines() if line and line.split()[2].isdigit()]


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


def parse(report: str, latencies_ms: list[float]) -> Run:
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", report, re.M)
    total = re.search(r"^number of transactions actually processed: (\d+)", report, re.M)
    if not (tps and total):
        raise RuntimeError(f"unreadable pgbench report:\n{report}")
    failed = re.search(r"^number of failed transactions: (\d+)", report, re.M)
    return Run(
        float(tps[1]),
        _percentile(latencies_ms, 0.50),
        _percentile(latencies_ms, 0.99),
        int(total[1]),
        int(failed[1]) if failed else 0,
    )
