"""Scan flows of the warehouse floor: receiving, putaway, transfers, cycle counts and adjustments.

Each flow is one htmx form walked step by step: location, product (or its GS1 label), quantity, lot
and expiry when the product needs them, confirm. The server keeps nothing between steps: the state
travels in hidden fields, each scan is checked as it arrives (an unknown code is refused at once, with
the code), and the change itself carries the idempotency key drawn with the form, so a double tap or
a retry on a flaky network records it once.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from app.domain.access import EVERYONE, SUPERVISORS
from app.routes.scan_flows.flows import FLOWS, Form
from app.routes.scan_flows.steps import advance_flow, show_flow
from app.web.auth import access
from app.web.context import Ctx


class OperationsController(Controller):
    """One GET (a fresh form) and one POST (the next step) per flow, on a site the user works on."""

    path = "/sites/{site:str}"
    opt = access(EVERYONE)

    @get("/receive", name="operations:receive")
    async def receive(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await show_flow(request, ctx, FLOWS["receive"], site)

    @post("/receive", name="operations:receive-step", status_code=200)
    async def receive_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await advance_flow(request, ctx, FLOWS["receive"], site, data)

    @get("/putaway", name="operations:putaway")
    async def putaway(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await show_flow(request, ctx, FLOWS["putaway"], site)

    @post("/putaway", name="operations:putaway-step", status_code=200)
    async def putaway_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await advance_flow(request, ctx, FLOWS["putaway"], site, data)

    @get("/move", name="operations:move")
    async def move(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await show_flow(request, ctx, FLOWS["move"], site)

    @post("/move", name="operations:move-step", status_code=200)
    async def move_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await advance_flow(request, ctx, FLOWS["move"], site, data)

    @get("/count", name="operations:count")
    async def count(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await show_flow(request, ctx, FLOWS["count"], site)

    @post("/count", name="operations:count-step", status_code=200)
    async def count_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await advance_flow(request, ctx, FLOWS["count"], site, data)

    @get("/adjust", name="operations:adjust", opt=access(SUPERVISORS))
    async def adjust(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await show_flow(request, ctx, FLOWS["adjust"], site)

    @post("/adjust", name="operations:adjust-step", opt=access(SUPERVISORS), status_code=200)
    async def adjust_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await advance_flow(request, ctx, FLOWS["adjust"], site, data)
