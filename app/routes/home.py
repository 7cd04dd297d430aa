"""The home page of each role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from app.db.queries.home import order_pipeline
from app.db.queries.picking import picking_at_home
from app.domain.access import EVERYONE, Role
from app.routes.common import principal_of
from app.services.health import readiness
from app.web.auth import access
from app.web.context import Ctx


class HomeController(Controller):
    @get("/", name="home:index", opt=access(EVERYONE))
    async def index(self, request: Request[Any, Any, Any], ctx: Ctx) -> Template:
        principal = principal_of(request)
        checks, picking = None, None
        if principal.role is Role.ADMIN:  # an admin's home shows the system; others', where picking stands
            stale = timedelta(seconds=ctx.settings.queue.heartbeat_stale_seconds)
            checks = await readiness(
                ctx.db, now=ctx.now(), worker_stale_after=stale, live_listening=ctx.live.connected.is_set()
            )
        async with ctx.db.reads() as session:
            pipeline = await order_pipeline(session, principal.site_scope)
            if principal.role is not Role.ADMIN:
                picking = await picking_at_home(session, principal.site_scope, principal.user_id)
        return Template(
            f"home/{principal.role.value}.html",
            context={"principal": principal, "pipeline": pipeline, "picking": picking, "checks": checks},
        )

    @get("/home/pipeline", name="home:pipeline", opt=access(EVERYONE))
    async def pipeline(self, request: Request[Any, Any, Any], ctx: Ctx) -> Template:
        """The order pipeline of the user's sites: the fragment the home page refreshes by itself."""
        principal = principal_of(request)
        async with ctx.db.reads() as session:
            pipeline = await order_pipeline(session, principal.site_scope)
        return Template("home/_pipeline.html", context={"pipeline": pipeline, "principal": principal})
