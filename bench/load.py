"""The load generator: wrk, run as a separate process, its report parsed."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
INSTALL_HINT = "wrk is not installed: `sudo apt-get install wrk` (Debian, Ubuntu) or `brew install wrk`."


@dataclass(frozen=True)
class Run:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    headers: dict[str, str] | None = None,
    threads: int = 1,
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> Run:
    """One wrk run; `script` is a Lua file (varying requests), `script_args` reach its `init(args)`."""
    command = [
        wrk_path(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)


def _duration_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not match:
        raise ValueError(f"unreadable wrk duration {value!r}")
    return float(match[1]) * UNITS[match[2]]


def parse(report: str) -> Run:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", report, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", report, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", report, re.M)
    total = re.search(r"^\s+(\d+) requests in", report, re.M)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"unreadable wrk report:\n{report}")
    errors = 0
    if bad := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report):
        errors += int(bad[1])
    if sock := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report):
        errors += sum(int(n) for n in sock.groups())
    return Run(float(rps[1]), _duration_ms(p50[1]), _duration_ms(p99[1]), int(total[1]), errors)
