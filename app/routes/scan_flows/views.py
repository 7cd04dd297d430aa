"""What a flow step answers, and how the screen shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.queries.operations import LotChoice, RecentRow, free_stock, lots_with_free_stock, recent_movements
from app.db.queries.users import SiteRow
from app.domain.access import SUPERVISORS, Principal
from app.routes.scan_flows.flows import (
    DIRECTIONS,
    PROMPTS,
    REASONS,
    RECENT_KINDS,
    RECENT_LIMIT,
    RECENT_WINDOW,
    STEP_LABELS,
    TEMPLATE,
    Flow,
    State,
)
from app.services.errors import N_, NotFound
from app.services.stock import (
    ProductRef,
    find_product,
)
from app.web.context import AppContext
from app.web.i18n import ngettext
from app.web.templating import is_fragment_request, page


@dataclass(frozen=True)
class Problem:
    message: str  # translated
    field: str | None = None


@dataclass(frozen=True)
class Notice:
    """A change was recorded: what, and the stock it left where it happened (never shown for a count)."""

    message: str
    balances: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Outcome:
    state: State
    notice: Notice | None = None
    problem: Problem | None = None
    status: int = 200
    scanned: bool = False  # answer to a scan: the screen beeps
    offer_override: bool = False  # a supervisor may allow a count the open picks refused
    offer_empty: bool = False  # "finish" with nothing counted: ask to confirm the location is empty


@dataclass(frozen=True)
class ProductView:
    sku: str
    name: str
    pack_size: int
    lot_tracked: bool
    expiry_tracked: bool


@dataclass(frozen=True)
class FlowView:
    """What the flow template shows; it only formats."""

    flow: Flow
    site: SiteRow
    state: State
    outcome: Outcome
    product: ProductView | None
    lots: list[LotChoice]
    free_here: int | None  # a product without lots: the units free where the stock is taken from
    recent: list[RecentRow] | None
    oob_recent: bool
    supervisor: bool
    hidden: list[tuple[str, str]] = field(default_factory=list)

    @property
    def step(self) -> str:
        return self.state.step

    @property
    def prompt(self) -> str:
        step = self.state.step
        if step in ("source", "target", "location"):
            return PROMPTS[(self.flow.name, step)]
        if step == "product":
            return N_("Scan the product or its GS1 label")
        if step == "details":
            if self.flow.scans_target_after_details():
                return N_("Key the quantity, then scan the destination")
            return N_("Scan the product again to add one")
        return N_("Check, then confirm")

    @property
    def steps(self) -> list[tuple[str, str]]:
        """(label msgid, "done" | "current" | "todo") for the step bar."""
        current = self.flow.steps.index(self.state.step)
        labels = []
        for index, step in enumerate(self.flow.steps):
            label = N_("Dock") if (self.flow.name, step) == ("receive", "target") else STEP_LABELS[step]
            labels.append((label, "done" if index < current else "current" if index == current else "todo"))
        return labels

    @property
    def shows_expiry(self) -> bool:
        """Stock from outside may start a lot, which then needs its date; inside moves reuse the lot's."""
        return bool(self.product and self.product.expiry_tracked and self.flow.name in ("receive", "adjust"))

    @property
    def packs(self) -> str | None:
        """The quantity in packs, e.g. "4 colis + 2 unités", when the product comes in packs."""
        quantity = self.state.quantity
        if not self.product or self.product.pack_size <= 1 or not quantity.isdecimal():
            return None
        full, rest = divmod(int(quantity), self.product.pack_size)
        if not full:
            return None
        text = ngettext("{num} pack", "{num} packs", full)
        return text + (" + " + ngettext("{num} unit", "{num} units", rest) if rest else "")

    @property
    def expiry_date(self) -> date | None:
        try:
            return date.fromisoformat(self.state.expiry) if self.state.expiry else None
        except ValueError:
            return None

    @property
    def direction_label(self) -> str | None:
        return dict(DIRECTIONS).get(self.state.direction)

    @property
    def reason_label(self) -> str | None:
        return dict(REASONS).get(self.state.reason)

    @property
    def reasons(self) -> tuple[tuple[str, str], ...]:
        return REASONS

    @property
    def directions(self) -> tuple[tuple[str, str], ...]:
        return DIRECTIONS

    @property
    def error_field(self) -> str | None:
        return self.outcome.problem.field if self.outcome.problem else None


# ---------------------------------------------------------------- routes


async def render_flow(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    flow: Flow,
    site: SiteRow,
    principal: Principal,
    outcome: Outcome,
) -> Template:
    state = outcome.state
    fragment = is_fragment_request(request)
    # The list of recent work is drawn with the page, and again only when a change was recorded.
    with_recent = not fragment or outcome.notice is not None
    async with ctx.db.reads() as session:
        product = await product_or_none(session, state.product)
        lots: list[LotChoice] = []
        free_here: int | None = None
        stock_at = state.source or (state.location if flow.name == "adjust" else "")
        if product and state.step == "details" and stock_at:
            if product.lot_tracked:
                lots = await lots_with_free_stock(session, site.id, stock_at, product.id)
            else:
                free_here = await free_stock(session, site.id, stock_at, product.id)
        recent = (
            await recent_movements(
                session,
                site.id,
                principal.user_id,
                RECENT_KINDS[flow.name],
                ctx.now() - RECENT_WINDOW,
                RECENT_LIMIT,
            )
            if with_recent
            else None
        )
    view = FlowView(
        flow=flow,
        site=site,
        state=state,
        outcome=outcome,
        product=product_view(product),
        lots=lots,
        free_here=free_here,
        recent=recent,
        oob_recent=fragment and recent is not None,
        supervisor=principal.may(SUPERVISORS),
    )
    view = replace(view, hidden=_hidden(view))
    response = page(request, TEMPLATE, "flow", status_code=outcome.status, view=view)
    if fragment:
        trigger = _trigger(outcome)
        if trigger:
            response.headers["HX-Trigger-After-Settle"] = json.dumps(trigger)
    return response


def _trigger(outcome: Outcome) -> dict[str, Any] | None:
    """The feedback scanner.js plays: a buzz and red for a refusal, a beep and green otherwise."""
    if outcome.problem is not None:
        return {"scan-error": {"field": outcome.problem.field or "scan"}}
    if outcome.notice is not None:
        return {"scan-ok": {"recorded": True}}
    if outcome.scanned:
        return {"scan-ok": {"recorded": False, "step": outcome.state.step}}
    return None


def _hidden(view: FlowView) -> list[tuple[str, str]]:
    """The state as hidden fields, less what the current step shows as inputs."""
    state = view.state
    shown: set[str] = set()
    if state.step == "details":
        shown = {"quantity", "lot"} if view.product and view.product.lot_tracked else {"quantity"}
        if view.shows_expiry:
            shown.add("expiry")
        if view.flow.name == "adjust":
            shown |= {"direction", "reason", "note"}
    fields = [("step", state.step), ("idempotency_key", state.key)]
    for name in ("source", "target", "location", "product", "lot", "expiry", "quantity"):
        value = getattr(state, name)
        if value and name not in shown:
            fields.append((name, value))
    for name in ("direction", "reason", "note"):
        value = getattr(state, name)
        if value and name not in shown:
            fields.append((name, value))
    for line in state.lines:
        fields += [
            ("line_product", line.product),
            ("line_lot", line.lot),
            ("line_counted", str(line.counted)),
        ]
    return fields


def product_view(product: ProductRef | None) -> ProductView | None:
    if product is None:
        return None
    return ProductView(
        product.sku, product.name, product.pack_size, product.lot_tracked, product.expiry_tracked
    )


async def product_or_none(session: AsyncSession, reference: str) -> ProductRef | None:
    if not reference:
        return None
    try:
        return await find_product(session, reference)
    except NotFound:
        return None
