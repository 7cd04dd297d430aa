"""CPU seconds spent by processes, for benchmarks that report where the time goes.

CPU time is much steadier than wall time on a shared or noisy machine: two versions of the code are
best compared on both.
"""

from __future__ import annotations

import contextlib

import psutil


def tree_cpu(pid: int) -> float:
    """User and system CPU of a process and its descendants, with the time of the children they have
    reaped: processes started or ended meanwhile (PostgreSQL's backends) are counted too."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def own_cpu() -> float:
    """User and system CPU of this process, every thread included."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)
