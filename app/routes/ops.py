"""Admin operations: prove the job queue works end to end."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from app.db.queries.jobs import request_status
from app.domain.access import ADMINS
from app.routes.common import client_ip, principal_of
from app.services.jobs import check_queue
from app.web.auth import access
from app.web.context import AppContext, Ctx


class OpsController(Controller):
    path = "/ops"
    opt = access(ADMINS)

    @post("/queue-check", name="ops:queue-check", status_code=200)
    async def start_queue_check(self, request: Request[Any, Any, Any], ctx: Ctx) -> Template:
        principal = principal_of(request)
        request_id = await check_queue(
            ctx.db, actor_id=principal.user_id, actor_name=principal.username, ip=client_ip(request)
        )
        return await _queue_check_fragment(ctx, request_id)

    @get("/queue-check/{request_id:int}", name="ops:queue-check-status")
    async def queue_check(self, ctx: Ctx, request_id: FromPath[int]) -> Template:
        return await _queue_check_fragment(ctx, request_id)


async def _queue_check_fragment(ctx: AppContext, request_id: int) -> Template:
    """Polls itself until the worker has answered, then stops (the answer carries no trigger)."""
    async with ctx.db.reads() as session:
        status = await request_status(session, request_id)
    if status is None:
        raise NotFoundException()
    return Template("ops/_queue_check.html", context={"status": status})
