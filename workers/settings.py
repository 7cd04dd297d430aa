"""Every queue, job function and cron schedule of the worker, in one place."""

from __future__ import annotations

from saq import CronJob

from workers.jobs import purge_idempotency_keys, purge_old_sessions, run_request

FUNCTIONS = [run_request]

CRON_JOBS = [
    CronJob(purge_old_sessions, cron="17 3 * * *", timeout=600),  # 03:17 UTC daily
    CronJob(purge_idempotency_keys, cron="27 3 * * *", timeout=600),  # 03:27 UTC daily
]

# Job options per relayed request: a few attempts with backoff; each attempt may take this long.
REQUEST_JOB_OPTIONS = {"timeout": 300, "retries": 3, "retry_delay": 1.0, "retry_backoff": True}
