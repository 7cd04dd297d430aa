"""Picking screens: a site's pick lists (take, give back, hand over), the pick flow, the printed pick list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.db.queries.picking import PickListRow, TaskRow, list_tasks, people_of_site, pick_list, pick_lists
from app.db.queries.users import SiteRow
from app.domain.access import EVERYONE, SUPERVISORS, Principal
from app.domain.picking import stops
from app.routes.common import principal_of, site_for, sites_of, to_first_site
from app.routes.pick_flow import advance_pick, new_key, show_pick
from app.routes.scan_flows.flows import Form, one
from app.services.errors import NotFound, Refused
from app.services.picking import reassign_pick_list, release_pick_list, take_pick_list
from app.services.stock import Actor
from app.web.auth import access
from app.web.barcodes import code128_svg
from app.web.context import AppContext, Ctx
from app.web.i18n import gettext as _
from app.web.templating import page

DONE_WINDOW = timedelta(hours=12)  # finished lists stay on the screen this long


@dataclass(frozen=True)
class ListsView:
    site: SiteRow
    lists: list[PickListRow]
    now: datetime
    me: Principal
    people: list[tuple[str, str]]  # whom a supervisor may hand a list to
    key: str  # idempotency key of the forms drawn with this page (one per form: key:action:list)
    sites: list[SiteRow]  # the person's sites, to switch between
    problem: str | None = None

    @property
    def supervisor(self) -> bool:
        return self.me.may(SUPERVISORS)


@dataclass(frozen=True)
class PrintView:
    site: SiteRow
    pick_list: PickListRow
    stops: list[tuple[str, list[TaskRow]]]
    printed_at: datetime

    def barcode(self, value: str) -> Any:
        return code128_svg(value)


class PickingController(Controller):
    opt = access(EVERYONE)

    @get("/picking", name="picking:home")
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        """The pick lists of the person's first site (the nav link lands here)."""
        return await to_first_site(request, ctx, "picking:index")

    @get("/sites/{site:str}/picking", name="picking:index")
    async def index(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        """Pick lists of the site; the list part refreshes itself (who has which list, and since when)."""
        return await _lists_page(request, ctx, site)

    @post("/sites/{site:str}/picking/{list_id:int}/take", name="picking:take", status_code=303)
    async def take(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        list_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        principal, found = principal_of(request), await site_for(ctx, principal_of(request), site)
        try:
            await take_pick_list(
                ctx.db, list_id, site_ids=[found.id], actor=_actor(principal), actor_name=principal.full_name,
                idempotency_key=one(data, "idempotency_key"), now=ctx.now(),
            )  # fmt: skip
        except Refused as refusal:
            return await _lists_page(request, ctx, site, refusal)
        return Redirect(
            request.app.route_reverse("picking:list", site=found.code, list_id=list_id), status_code=303
        )

    @post("/sites/{site:str}/picking/{list_id:int}/release", name="picking:release", status_code=303)
    async def release(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        list_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        principal, found = principal_of(request), await site_for(ctx, principal_of(request), site)
        try:
            await release_pick_list(
                ctx.db, list_id, site_ids=[found.id], actor=_actor(principal),
                supervisor=principal.may(SUPERVISORS), idempotency_key=one(data, "idempotency_key"),
                now=ctx.now(),
            )  # fmt: skip
        except Refused as refusal:
            return await _lists_page(request, ctx, site, refusal)
        return Redirect(request.app.route_reverse("picking:index", site=found.code), status_code=303)

    @post(
        "/sites/{site:str}/picking/{list_id:int}/reassign",
        name="picking:reassign",
        opt=access(SUPERVISORS),
        status_code=303,
    )
    async def reassign(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        list_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        principal, found = principal_of(request), await site_for(ctx, principal_of(request), site)
        try:
            await reassign_pick_list(
                ctx.db, list_id, one(data, "username"), site_ids=[found.id], actor=_actor(principal),
                actor_name=principal.full_name, idempotency_key=one(data, "idempotency_key"), now=ctx.now(),
            )  # fmt: skip
        except Refused as refusal:
            return await _lists_page(request, ctx, site, refusal)
        return Redirect(request.app.route_reverse("picking:index", site=found.code), status_code=303)

    @get("/sites/{site:str}/picking/{list_id:int}", name="picking:list")
    async def pick(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], list_id: FromPath[int]
    ) -> Template:
        """The pick flow: the next task in walking order, scanned and confirmed."""
        principal = principal_of(request)
        return await show_pick(request, ctx, await site_for(ctx, principal, site), principal, list_id)

    @post("/sites/{site:str}/picking/{list_id:int}", name="picking:step", status_code=200)
    async def step(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        list_id: FromPath[int],
        data: Form,
    ) -> Template:
        principal = principal_of(request)
        found = await site_for(ctx, principal, site)
        return await advance_pick(request, ctx, found, principal, list_id, data)

    @get("/sites/{site:str}/picking/{list_id:int}/print", name="picking:print")
    async def print_list(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], list_id: FromPath[int]
    ) -> Template:
        """The list on paper, in walking order, with the barcodes of its locations and products."""
        found = await site_for(ctx, principal_of(request), site)
        async with ctx.db.reads() as session:
            row = await pick_list(session, found.id, list_id)
            if row is None:
                raise NotFound("Unknown pick list: {number}.", number=list_id)
            tasks = [t for t in await list_tasks(session, [list_id]) if t.status == "open"]
        view = PrintView(found, row, stops(tasks), ctx.now())
        return Template("picking/print.html", context={"view": view})


def _actor(principal: Principal) -> Actor:
    return Actor(user_id=principal.user_id, scope=str(principal.user_id))


async def _lists_page(
    request: Request[Any, Any, Any], ctx: AppContext, site_code: str, refusal: Refused | None = None
) -> Template:
    principal = principal_of(request)
    site = await site_for(ctx, principal, site_code)
    now = ctx.now()
    async with ctx.db.reads() as session:
        lists = await pick_lists(session, [site.id], done_since=now - DONE_WINDOW)
        people = await people_of_site(session, site.id) if principal.may(SUPERVISORS) else []
    problem = _(refusal.message, **refusal.facts) if refusal else None
    view = ListsView(site, lists, now, principal, people, new_key(), await sites_of(ctx, principal), problem)
    status = refusal.status if refusal else 200
    return page(request, "picking/index.html", "lists", status_code=status, view=view)
