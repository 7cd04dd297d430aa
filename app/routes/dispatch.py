"""The supervisor's dispatch screen: preview a run (and compare two policies), commit it, follow it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.db.queries.dispatch_views import (
    open_demand_figures,
    recent_runs,
    run_by_id,
    run_destination_totals,
    run_explanation,
    run_pick_lists,
    site_defaults,
)
from app.db.queries.stock_views import site_zone
from app.db.queries.users import SiteRow
from app.domain.access import SUPERVISORS
from app.routes.common import principal_of, site_for, to_first_site
from app.routes.dispatch_view import (
    PAGE_SIZE,
    POLICY_LABELS,
    REASON_LABELS,
    ROUNDING_LABELS,
    Filters,
    build_preview,
    chart_bars,
    pages,
)
from app.routes.scan_flows.flows import Form, new_key, one
from app.services.dispatch_runs import OPEN_STATES, RunOptions, start_dispatch_run
from app.services.errors import Invalid, NotFound, Refused
from app.services.orders import due_moment
from app.services.run_undo import undo_dispatch_run
from app.services.stock import Actor
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.templating import page

LABELS: dict[str, Any] = {"policies": POLICY_LABELS, "roundings": ROUNDING_LABELS, "reasons": REASON_LABELS}


class DispatchController(Controller):
    opt = access(SUPERVISORS)

    @get("/dispatch", name="dispatch:home")
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        """The dispatch screen of the person's first site (the nav link lands here)."""
        return await to_first_site(request, ctx, "dispatch:index")

    @get("/sites/{site:str}/dispatch", name="dispatch:index")
    async def index(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        found = await site_for(ctx, principal_of(request), site)
        async with ctx.db.reads() as session:
            defaults = await site_defaults(session, found.id)
            demand = await open_demand_figures(session, found.id, OPEN_STATES)
            runs = await recent_runs(session, found.id)
        return page(
            request, "dispatch/index.html", site=found, defaults=defaults, demand=demand, runs=runs, **LABELS
        )

    @get("/sites/{site:str}/dispatch/preview", name="dispatch:preview")
    async def preview(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        policy: FromQuery[str] = "proportional",
        rounding: FromQuery[str] = "largest_remainder",
        spill: FromQuery[bool] = False,
        compare: FromQuery[str] = "",
        due_by: FromQuery[str] = "",
        q: FromQuery[str] = "",
        show: FromQuery[str] = "short",
        page_no: FromQuery[int] = 1,
    ) -> Template:
        found = await site_for(ctx, principal_of(request), site)
        cut_off = await _cut_off(ctx, found, due_by)
        options = RunOptions.parse(policy, rounding, spill, cut_off)
        other = RunOptions.parse(compare, rounding, spill, cut_off) if compare else None
        view = await build_preview(
            ctx.db, found.id, options, Filters(q, show, max(page_no, 1)), ctx.now(), other
        )
        return page(
            request,
            "dispatch/index.html",
            "preview",
            site=found,
            view=view,
            filters=Filters(q, show, max(page_no, 1)),
            pages=pages(view.matching_rows),
            compare=compare,
            due_day=due_by.strip(),
            **LABELS,
        )

    @post("/sites/{site:str}/dispatch/runs", name="dispatch:commit", status_code=200)
    async def commit(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form) -> Any:
        principal = principal_of(request)
        found = await site_for(ctx, principal, site)
        options = RunOptions.parse(
            one(data, "policy"),
            one(data, "rounding"),
            one(data, "spill") == "true",
            await _cut_off(ctx, found, one(data, "due_by")),
        )
        try:
            _status, answer = await start_dispatch_run(
                ctx.db,
                found.id,
                options,
                expected_inputs=one(data, "inputs") or None,
                actor=Actor(principal.user_id, str(principal.user_id)),
                idempotency_key=one(data, "key"),
                now=ctx.now(),
                inline_max_lines=ctx.settings.dispatch.inline_run_max_lines,
                pick_list_max_tasks=ctx.settings.dispatch.pick_list_max_tasks,
            )
        except Refused as refusal:
            again = (
                request.app.route_reverse("dispatch:preview", site=found.code)
                + "?"
                + urlencode(
                    {
                        "policy": options.policy.value,
                        "rounding": options.rounding.value,
                        "spill": options.spill,
                        "due_by": one(data, "due_by"),
                    }
                )
            )
            return page(
                request, "dispatch/_refused.html", refusal=refusal, again=again, status_code=refusal.status
            )
        target = request.app.route_reverse("dispatch:run", site=found.code, run_id=answer["run_id"])
        return (
            ClientRedirect(target) if request.headers.get("hx-request") else Redirect(target, status_code=303)
        )

    @get("/sites/{site:str}/dispatch/runs/{run_id:int}", name="dispatch:run")
    async def run(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        run_id: FromPath[int],
        q: FromQuery[str] = "",
        show: FromQuery[str] = "short",
        page_no: FromQuery[int] = 1,
        part: FromQuery[str] = "explanation",
    ) -> Template:
        """The run; an htmx request gets its `part`: the explanation (filters, pages) or the pick lists."""
        found = await site_for(ctx, principal_of(request), site)
        fragment = "lists" if part == "lists" else "explanation"
        return await _run_page(request, ctx, found, run_id, Filters(q, show, max(page_no, 1)), fragment)

    @post("/sites/{site:str}/dispatch/runs/{run_id:int}/undo", name="dispatch:undo", status_code=303)
    async def undo(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        run_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """Give back what the run reserved on lists nobody has taken, then back to the run."""
        principal = principal_of(request)
        found = await site_for(ctx, principal, site)
        try:
            await undo_dispatch_run(
                ctx.db,
                run_id,
                site_ids=[found.id],
                actor=Actor(principal.user_id, str(principal.user_id)),
                actor_name=principal.full_name,
                idempotency_key=one(data, "idempotency_key"),
                now=ctx.now(),
            )
        except Refused as refusal:
            if isinstance(refusal, NotFound):
                raise
            return await _run_page(
                request,
                ctx,
                found,
                run_id,
                Filters(),
                "undo",
                undo_refused=refusal,
                status_code=refusal.status,
            )
        target = request.app.route_reverse("dispatch:run", site=found.code, run_id=run_id)
        return (
            ClientRedirect(target) if request.headers.get("hx-request") else Redirect(target, status_code=303)
        )

    @get("/sites/{site:str}/dispatch/runs/{run_id:int}/progress", name="dispatch:progress")
    async def progress(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], run_id: FromPath[int]
    ) -> Response[Any]:
        found = await site_for(ctx, principal_of(request), site)
        async with ctx.db.reads() as session:
            run = await run_by_id(session, found.id, run_id)
        if run is None:
            raise NotFound("Unknown dispatch run.")
        if run.finished:  # polling ends with the page itself, reloaded to show the result
            return ClientRedirect(request.app.route_reverse("dispatch:run", site=found.code, run_id=run.id))
        return page(request, "dispatch/_progress.html", site=found, run=run)


async def _run_page(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    run_id: int,
    filters: Filters,
    fragment: str,
    *,
    undo_refused: Refused | None = None,
    status_code: int = 200,
) -> Template:
    """A run's page: its figures, the fill rate per destination, its pick lists, its explanation."""
    async with ctx.db.reads() as session:
        run = await run_by_id(session, site.id, run_id)
        if run is None:
            raise NotFound("Unknown dispatch run.")
        rows, total = await run_explanation(
            session,
            run.id,
            q=filters.q,
            short_only=filters.short_only,
            limit=PAGE_SIZE,
            offset=(filters.page_no - 1) * PAGE_SIZE,
        )
        totals = await run_destination_totals(session, run.id)
        lists = await run_pick_lists(session, run.id)
    return page(
        request,
        "dispatch/run.html",
        fragment,
        status_code=status_code,
        site=site,
        now=ctx.now(),
        run=run,
        rows=rows,
        total=total,
        pages=pages(total),
        filters=filters,
        totals=totals,
        bars=chart_bars(totals),
        lists=lists,
        undo_refused=undo_refused,
        key=new_key(),
        **LABELS,
    )


async def _cut_off(ctx: AppContext, site: SiteRow, day: str) -> datetime | None:
    """A run's cut-off as the form gives it, a day (YYYY-MM-DD): the end of that day at the site."""
    if not day.strip():
        return None
    try:
        due = date.fromisoformat(day.strip())
    except ValueError:
        raise Invalid("Enter the cut-off as a date, or leave it blank.", field="due_by") from None
    async with ctx.db.reads() as session:
        return due_moment(due, await site_zone(session, site.id))
