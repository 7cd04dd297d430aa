"""JSON API v1 of dispatch runs: preview (allocations, shortages, explanations, reservations) or commit.

A preview writes nothing and returns `inputs`, the fingerprint of what it was computed on: send it back
with the commit (`expected_inputs`) and the commit is refused (409) if orders or stock changed since.
A commit needs an `Idempotency-Key`; a large run is queued (202) and followed with GET …/{id}.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from app.db.queries.dispatch_views import (
    ExplanationRow,
    RunRow,
    RunUndone,
    recent_runs,
    run_by_id,
    run_explanation,
    run_site_code,
)
from app.domain.access import SUPERVISORS
from app.routes.api_stock import INT4_MAX, IdempotencyKey, _ApiController, _site, problems
from app.routes.common import principal_of
from app.services.collector import collector_paused
from app.services.dispatch_runs import (
    RunOptions,
    RunPreview,
    explanation_fields,
    preview_dispatch_run,
    start_dispatch_run,
)
from app.services.errors import NotFound
from app.services.run_undo import undo_dispatch_run
from app.services.stock import Actor
from app.web.auth import access
from app.web.context import AppContext, Ctx

PolicyName = Literal["proportional", "minimums_first", "quota", "even", "strict_priority"]
RoundingName = Literal["largest_remainder", "sainte_lague"]


class RunBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    site: str
    policy: PolicyName = "proportional"
    rounding: RoundingName = "largest_remainder"
    spill: bool = False
    preview: Annotated[bool, msgspec.Meta(description="true: compute and write nothing.")] = True
    expected_inputs: (
        Annotated[str, msgspec.Meta(description="`inputs` of the preview this commit confirms.")] | None
    ) = None
    due_by: (
        Annotated[
            datetime,
            msgspec.Meta(
                tz=True,
                description="A cut-off (RFC 3339, with its offset): only orders due by then take part. "
                "Omitted: every open order.",
            ),
        ]
        | None
    ) = None


@dataclass(frozen=True)
class Allocation:
    """One destination's share of one product, and why."""

    product: str
    destination: str
    tier: int
    need_units: int
    min_units: int | None
    max_units: int | None
    pack_size: int
    quota_packs: float  # the exact quota before rounding
    rounding_step: int
    packs: int
    eaches: int
    units: int
    fill_rate: float
    reason: str


@dataclass(frozen=True)
class Shortage:
    product: str
    destination: str
    units: int


@dataclass(frozen=True)
class Reservation:
    """Units to reserve (and pick) at one location and lot for one order line."""

    order: str
    line: int
    product: str
    location: str
    lot: str | None
    units: int


@dataclass(frozen=True)
class PreviewAnswer:
    preview: bool
    inputs: str
    summary: dict[str, Any]
    allocations: list[Allocation]
    shortages: list[Shortage]
    reservations: list[Reservation]


@dataclass(frozen=True)
class RunProgress:
    """How far a run is: its phase, and how many of its lines are planned (a queued run is planned in
    parts, so the figure grows while it allocates)."""

    phase: str  # queued, loading, allocating, writing, then the final status
    lines: int
    planned: int


@dataclass(frozen=True)
class RunAnswer:
    id: int
    site: str
    status: str  # queued, running, committed, stale (inputs changed), failed
    progress: RunProgress
    policy: str
    rounding: str
    spill: bool
    summary: dict[str, Any]
    error: str | None
    created_at: str
    finished_at: str | None
    explanations: list[Allocation]
    explanations_total: int
    undone: RunUndone | None  # given back by a supervisor: when, by whom, what
    due_by: str | None  # its cut-off: only orders due by then took part


def _allocation(row: ExplanationRow) -> Allocation:
    return Allocation(
        row.sku,
        row.destination,
        row.tier,
        row.need_units,
        row.min_units,
        row.max_units,
        row.pack_size,
        round(row.quota, 6),
        row.rounding_step,
        row.packs,
        row.eaches,
        row.units,
        round(row.fill_rate, 4),
        row.reason,
    )


def preview_answer(preview: RunPreview) -> PreviewAnswer:
    """Everything a preview decided, in the API's words (codes, not ids)."""
    demand = preview.demand
    skus = {terms.product_id: terms.sku for terms in demand.products.values()}
    lines = {line.line_id: line for line in demand.lines}
    places = {(s.location_id, s.lot_id): s for s in preview.stock}
    allocations, shortages = [], []
    for product in preview.plan.allocations:
        for line in product.lines:
            sku, code = product.supply.product, line.destination_code
            allocations.append(_allocation(ExplanationRow(sku, "", code, "", *explanation_fields(line))))
            if line.shortage_units:
                shortages.append(Shortage(product.supply.product, line.destination_code, line.shortage_units))
    reservations = [
        Reservation(
            lines[t.line_id].order_number,
            lines[t.line_id].line_no,
            skus[t.product_id],
            places[(t.location_id, t.lot_id)].location_code,
            places[(t.location_id, t.lot_id)].lot_code,
            t.units,
        )
        for t in preview.plan.tasks
    ]
    return PreviewAnswer(True, preview.inputs, preview.summary(), allocations, shortages, reservations)


def encoded_preview_answer(preview: RunPreview) -> bytes:
    with collector_paused():  # 200,000 objects for a large site (see collector_paused)
        return encode_in_slices(preview_answer(preview))


def encode_in_slices(answer: Any, size: int = 10_000) -> bytes:
    """`msgspec.json.encode(answer)` for a dataclass with long lists, a slice of each list at a time.

    msgspec encodes in one C call that keeps the interpreter: 0.2-0.4 s for a 100,000-line preview's answer
    (35 MB), during which the event loop waits even though the encoding runs in another thread. Between
    slices the interpreter can give the loop its turn.
    """
    parts = [b"{"]
    for n, field in enumerate(dataclasses.fields(answer)):
        value = getattr(answer, field.name)
        parts.append((b"," if n else b"") + msgspec.json.encode(field.name) + b":")
        if isinstance(value, list) and len(value) > size:
            slices = (msgspec.json.encode(value[i : i + size])[1:-1] for i in range(0, len(value), size))
            parts.append(b"[" + b",".join(slices) + b"]")
        else:
            parts.append(msgspec.json.encode(value))
    return b"".join(parts) + b"}"


def run_answer(site: str, run: RunRow, rows: list[ExplanationRow], total: int) -> RunAnswer:
    return RunAnswer(
        run.id,
        site,
        run.status,
        RunProgress(run.phase, run.progress_total, run.progress_done),
        run.policy,
        run.rounding,
        run.spill,
        run.summary,
        run.error["message"] if run.error else None,
        run.created_at.isoformat(),
        run.finished_at.isoformat() if run.finished_at else None,
        [_allocation(row) for row in rows],
        total,
        run.undone,
        run.due_by.isoformat() if run.due_by else None,
    )


Limit = Annotated[int, QueryParameter(ge=1, le=100_000, description="Explanation rows per page.")]
Offset = Annotated[int, QueryParameter(ge=0, le=INT4_MAX, description="Explanation rows to skip.")]


class ApiDispatchRunsController(_ApiController):
    path = "/api/v1/dispatch-runs"
    tags = ["dispatch"]

    @post(
        "/",
        name="api:dispatch-runs-create",
        opt=access(SUPERVISORS),
        status_code=200,
        responses=problems(403, 409, 422),
    )
    async def create_run(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: JSONBody[RunBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Preview a dispatch run of a site (200, writes nothing) or commit it (201; 202 when queued).

        The Idempotency-Key header is required for a commit; a preview ignores it.
        """
        principal = principal_of(request)
        async with ctx.db.reads() as session:
            site = await _site(session, principal, data.site)
        options = RunOptions.parse(data.policy, data.rounding, data.spill, data.due_by)
        if data.preview:
            preview = await preview_dispatch_run(ctx.db, site.id, options, now=ctx.now())
            # A large site's answer is 100,000 allocations and as many reservations: seconds of CPU to
            # build and tens of megabytes to encode, done in a thread so the process's other requests
            # and live boards go on meanwhile.
            body = await asyncio.to_thread(encoded_preview_answer, preview)
            return Response(body, status_code=200, media_type=MediaType.JSON)
        status, answer = await start_dispatch_run(
            ctx.db,
            site.id,
            options,
            expected_inputs=data.expected_inputs,
            actor=Actor(principal.user_id, str(principal.user_id)),
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
            inline_max_lines=ctx.settings.dispatch.inline_run_max_lines,
            pick_list_max_tasks=ctx.settings.dispatch.pick_list_max_tasks,
        )
        location = request.app.route_reverse("api:dispatch-runs-show", run_id=answer["run_id"])
        return Response(
            await self._run(ctx, site.code, site.id, answer["run_id"]),
            status_code=status,
            headers={"Location": location},
        )

    @get("/", name="api:dispatch-runs-list", opt=access(SUPERVISORS), responses=problems(403, 422))
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: Annotated[str, QueryParameter(description="A site code, e.g. LYS.")],
    ) -> list[RunAnswer]:
        """The site's latest 50 runs, newest first (without their explanations)."""
        async with ctx.db.reads() as session:
            found = await _site(session, principal_of(request), site)
            runs = await recent_runs(session, found.id, limit=50)
        return [run_answer(found.code, run, [], 0) for run in runs]

    @get(
        "/{run_id:int}", name="api:dispatch-runs-show", opt=access(SUPERVISORS), responses=problems(403, 404)
    )
    async def show_run(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        run_id: FromPath[int],
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> RunAnswer:
        """One run: its status (follow a queued run until `committed`), figures and explanation."""
        async with ctx.db.reads() as session:
            site = await run_site_code(session, run_id)
            if site is None:
                raise NotFound("Unknown dispatch run.")
            found = await _site(session, principal_of(request), site)
        return await self._run(ctx, found.code, found.id, run_id, limit, offset)

    @post(
        "/{run_id:int}/undo",
        name="api:dispatch-runs-undo",
        opt=access(SUPERVISORS),
        status_code=200,
        responses=problems(403, 404, 409, 422),
    )
    async def undo_run(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        run_id: FromPath[int],
        idempotency_key: IdempotencyKey = None,
    ) -> RunAnswer:
        """Undo a committed run: what it reserved on lists nobody has taken goes back to stock, its orders
        are released again, its lists left empty are cancelled; lists being picked are kept (idempotent).
        409 when it was undone already or nothing is left to give back."""
        principal = principal_of(request)
        async with ctx.db.reads() as session:
            site = await run_site_code(session, run_id)
            if site is None:
                raise NotFound("Unknown dispatch run.")
            found = await _site(session, principal, site)
        await undo_dispatch_run(
            ctx.db,
            run_id,
            site_ids=[found.id],
            actor=Actor(principal.user_id, str(principal.user_id)),
            actor_name=principal.full_name,
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
        )
        return await self._run(ctx, found.code, found.id, run_id, limit=0)

    async def _run(
        self, ctx: AppContext, code: str, site_id: int, run_id: int, limit: int = 1000, offset: int = 0
    ) -> RunAnswer:
        async with ctx.db.reads() as session:
            run = await run_by_id(session, site_id, run_id)
            if run is None:
                raise NotFound("Unknown dispatch run.")
            rows, total = await run_explanation(
                session, run_id, q="", short_only=False, limit=limit, offset=offset
            )
        return run_answer(code, run, rows, total)
