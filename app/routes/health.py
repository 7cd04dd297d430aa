"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from litestar import Controller, Response, get
from litestar.plugins.prometheus import PrometheusController

from app.services.health import readiness
from app.web.auth import LOCAL, PUBLIC, access
from app.web.context import Ctx

LISTENER_GRACE_SECONDS = 2.0


class HealthController(Controller):
    path = "/health"
    opt = access(PUBLIC)
    tags = ["health"]

    @get("/live", name="health:live", cache_control=None)
    async def live(self) -> dict[str, str]:
        """The process answers. Nothing else is checked: a database outage must not restart the web tier."""
        return {"status": "ok"}

    @get("/ready", name="health:ready")
    async def ready(self, ctx: Ctx) -> Response[dict[str, Any]]:
        """Database, job queue, worker heartbeat, this process's board events; 503 if any is not ready."""
        stale = timedelta(seconds=ctx.settings.queue.heartbeat_stale_seconds)
        with contextlib.suppress(TimeoutError):  # just started, or reconnecting: give it a moment
            async with asyncio.timeout(LISTENER_GRACE_SECONDS):
                await ctx.live.connected.wait()
        checks = await readiness(
            ctx.db, now=ctx.now(), worker_stale_after=stale, live_listening=ctx.live.connected.is_set()
        )
        ok = all(c.ok for c in checks)
        body = {
            "status": "ok" if ok else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail_text} for c in checks},
        }
        return Response(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


class MetricsController(PrometheusController):
    path = "/metrics"
    opt = access(LOCAL)
    include_in_schema = False
