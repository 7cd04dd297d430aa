"""The pick flow of one list: the next task in walking order, scanned step by step, then confirmed once.

Like the stock scan flows, the server keeps nothing between steps: the task shown, what was scanned and
the idempotency key travel in hidden fields. Each scan is checked against the task as it comes (the
same checks the confirmation makes, app.services.picking.check_scan), so a wrong shelf buzzes at once.
A quantity below the task's asks for a second tap: a short pick is a decision, not a typo.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.response import Template

from app.db.queries.picking import PickListRow, TaskRow, list_tasks, pick_list
from app.db.queries.users import SiteRow
from app.db.session import Busy
from app.domain.access import SUPERVISORS, Principal
from app.domain.picking import PickProblem, PickScan, check_pick, walking_order
from app.domain.scan import classify_scan
from app.routes.scan_flows.flows import one
from app.services.errors import N_, Invalid, NotFound, Refused
from app.services.picking import (
    PickConfirmation,
    TaskContext,
    confirm_pick,
    load_task,
    read_scan,
    refuse,
)
from app.services.stock import MAX_QUANTITY, Actor
from app.web.context import AppContext
from app.web.i18n import gettext as _
from app.web.templating import is_fragment_request, page

TEMPLATE = "picking/pick.html"
STEPS = ("location", "product", "lot", "quantity", "short")
STEP_LABELS = {
    "location": N_("Location"),
    "product": N_("Product"),
    "lot": N_("Lot"),
    "quantity": N_("Quantity"),
}
PROMPTS = {
    "location": N_("Scan the location"),
    "product": N_("Scan the product or its GS1 label"),
    "lot": N_("Scan the lot label, or key the lot"),
    "quantity": N_("Key the quantity found, then confirm"),
    "short": N_("Check the short pick, then record it"),
}


def new_key() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PickState:
    step: str
    key: str
    task: int = 0
    location: str = ""
    product: str = ""  # the SKU it resolved to
    lot: str = ""
    quantity: str = ""

    @classmethod
    def start(cls, task: int = 0) -> PickState:
        return cls(step="location", key=new_key(), task=task)

    @classmethod
    def read(cls, data: dict[str, Any]) -> PickState:
        def text(name: str, limit: int = 64) -> str:
            return one(data, name).strip()[:limit]

        step = text("step")
        task = text("task", 20)
        return cls(
            step=step if step in STEPS else "location",
            key=text("idempotency_key", 128) or new_key(),
            task=int(task) if task.isdecimal() else 0,
            location=text("location"),
            product=text("product"),
            lot=text("lot"),
            quantity=text("quantity", 12),
        )

    def hidden(self) -> list[tuple[str, str]]:
        fields = [("step", self.step), ("idempotency_key", self.key), ("task", str(self.task))]
        shown = {"quantity"} if self.step == "quantity" else set()
        for name in ("location", "product", "lot", "quantity"):
            value = getattr(self, name)
            if value and name not in shown:
                fields.append((name, value))
        return fields


@dataclass(frozen=True)
class Outcome:
    state: PickState
    notice: str | None = None
    problem: str | None = None  # translated
    problem_field: str | None = None
    status: int = 200
    scanned: bool = False


@dataclass(frozen=True)
class PickView:
    """What the pick screen shows; the template only formats."""

    site: SiteRow
    pick_list: PickListRow
    task: TaskRow | None  # the task being picked (None: the list is finished)
    upcoming: list[TaskRow]
    done: int
    total: int
    outcome: Outcome
    mine: bool  # the list is taken by this person
    supervisor: bool

    @property
    def state(self) -> PickState:
        return self.outcome.state

    @property
    def prompt(self) -> str:
        return PROMPTS[self.state.step]

    @property
    def hidden(self) -> list[tuple[str, str]]:
        return self.state.hidden()

    @property
    def steps(self) -> list[tuple[str, str]]:
        wanted = [s for s in STEPS[:4] if s != "lot" or (self.task and self.task.lot_tracked)]
        current = self.state.step if self.state.step != "short" else "quantity"
        index = wanted.index(current) if current in wanted else 0
        return [
            (STEP_LABELS[s], "done" if i < index else "current" if i == index else "todo")
            for i, s in enumerate(wanted)
        ]

    @property
    def short_by(self) -> int:
        if self.task is None or not self.state.quantity.isdecimal():
            return 0
        return max(self.task.quantity - int(self.state.quantity), 0)


async def show_pick(
    request: Request[Any, Any, Any], ctx: AppContext, site: SiteRow, principal: Principal, list_id: int
) -> Template:
    return await render_pick(request, ctx, site, principal, list_id, Outcome(PickState.start()))


async def advance_pick(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    principal: Principal,
    list_id: int,
    data: dict[str, Any],
) -> Template:
    state = PickState.read(data)
    action, scan = one(data, "action").strip(), one(data, "scan").strip()[:200]
    try:
        outcome = await _next(ctx, site, principal, state, action, scan)
    except Refused as refusal:
        outcome = _refused(state, refusal, scanned=bool(scan))
    return await render_pick(request, ctx, site, principal, list_id, outcome)


# ---------------------------------------------------------------- steps


async def _next(
    ctx: AppContext, site: SiteRow, principal: Principal, state: PickState, action: str, scan: str
) -> Outcome:
    if action == "cancel" or not state.task:
        return Outcome(PickState.start(state.task))
    async with ctx.db.reads() as session:
        task = await load_task(session, state.task, [site.id])
        if task.status != "open":
            return Outcome(PickState.start())  # done meanwhile (another tab, a replay): on to the next
        if scan:
            return Outcome(await _on_scan(session, task, state, scan, ctx.now()), scanned=True)
    if action == "empty" and state.location:
        return Outcome(replace(state, step="short", quantity="0"))
    if action == "edit":
        return Outcome(replace(state, step="quantity"))
    if action == "confirm" and state.step == "quantity":
        quantity = _quantity(state)
        if quantity > task.target.quantity or quantity == task.target.quantity:
            return await _record(ctx, site, principal, task, state, quantity)
        return Outcome(replace(state, step="short"))
    if action == "short" and state.step == "short":
        return await _record(ctx, site, principal, task, state, _quantity(state))
    return Outcome(state)


async def _on_scan(session: Any, task: TaskContext, state: PickState, scan: str, now: datetime) -> PickState:
    """Check one scan against the task, in walking order: the location, then the product, then its lot."""
    if state.step == "location":
        _check(task, await read_scan(session, task, location=scan), now)
        return replace(state, step="product", location=scan)
    if state.step == "product":
        found = await read_scan(session, task, product=scan)
        sku = found.product.text if found.product else ""
        if _check(task, found, now, lot_may_follow=True):
            return replace(state, step="lot", product=sku)
        return replace(
            state, step="quantity", product=sku, lot=found.lot or "", quantity=str(task.target.quantity)
        )
    if state.step == "lot":
        label = classify_scan(scan)
        if label.kind == "gs1" and label.gs1 is not None and label.gs1.gtin is not None:
            found = await read_scan(session, task, product=scan)  # the product's own label, with its lot
        else:
            lot = label.gs1.lot if label.kind == "gs1" and label.gs1 is not None else label.value
            found = await read_scan(session, task, product=state.product, lot=lot or "")
        _check(task, found, now)
        return replace(state, step="quantity", lot=found.lot or "", quantity=str(task.target.quantity))
    raise Invalid("Key the quantity, then confirm.", field="scan")


def _check(task: TaskContext, scan: PickScan, now: datetime, *, lot_may_follow: bool = False) -> bool:
    """Refuse the first problem of the scan; True when only the lot is missing and may be scanned next."""
    problem = check_pick(task.target, scan, task.today(now))
    if problem is PickProblem.LOT_MISSING and lot_may_follow:
        return True
    if problem is not None:
        raise refuse(problem, task, scan)
    return False


def _quantity(state: PickState) -> int:
    text = state.quantity
    if not (text.isascii() and text.isdecimal()) or int(text) > MAX_QUANTITY:
        raise Invalid("The quantity must be a whole number, 0 or more.", field="quantity")
    return int(text)


async def _record(
    ctx: AppContext, site: SiteRow, principal: Principal, task: TaskContext, state: PickState, quantity: int
) -> Outcome:
    """Confirm the task once; a replay of the key returns the first answer (or the first refusal)."""
    actor = Actor(user_id=principal.user_id, scope=str(principal.user_id))
    confirmation = PickConfirmation(state.location, state.product, state.lot or None, quantity)
    try:
        _status, answer = await confirm_pick(
            ctx.db,
            task.id,
            confirmation,
            site_ids=[site.id],
            actor=actor,
            idempotency_key=state.key,
            now=ctx.now(),
        )
    except Refused as refusal:
        # The key now holds this refusal: whatever the operator changes next needs a new one.
        return _refused(replace(state, key=new_key()), refusal, scanned=False)
    except Busy:
        message = _("The warehouse is very busy: nothing was recorded. Tap again.")
        return Outcome(state, problem=message, status=503)
    target = task.target
    if answer["short"]:
        notice = _(
            "Short pick recorded: {picked} of {quantity} × {product} at {location}, {short} missing.",
            picked=answer["picked"],
            quantity=target.quantity,
            product=target.sku,
            location=target.location,
            short=answer["short"],
        )
    else:
        notice = _(
            "Picked {quantity} × {product} at {location}.",
            quantity=answer["picked"],
            product=target.sku,
            location=target.location,
        )
    return Outcome(PickState.start(), notice=notice)


def _refused(state: PickState, refusal: Refused, *, scanned: bool) -> Outcome:
    field = refusal.field if isinstance(refusal, Invalid) else None
    if field == "quantity" and state.step == "short":
        state = replace(state, step="quantity")
    status = 422 if isinstance(refusal, NotFound) else refusal.status
    message = _(refusal.message, **refusal.facts)
    return Outcome(state, problem=message, problem_field=field, status=status, scanned=scanned)


# ---------------------------------------------------------------- the screen


async def render_pick(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    principal: Principal,
    list_id: int,
    outcome: Outcome,
) -> Template:
    async with ctx.db.reads() as session:
        found = await pick_list(session, site.id, list_id)
        if found is None:
            raise NotFound("Unknown pick list: {number}.", number=list_id)
        tasks = await list_tasks(session, [list_id])
    ordered = walking_order([t for t in tasks if t.status == "open"])
    state = outcome.state
    current = next((t for t in ordered if t.task_id == state.task), None)
    if current is None:  # a fresh form, or its task is done: the next task in walking order
        current = ordered[0] if ordered else None
        state = PickState.start(current.task_id if current else 0)
    view = PickView(
        site=site,
        pick_list=found,
        task=current,
        upcoming=[t for t in ordered if t is not current][:3],
        done=sum(1 for t in tasks if t.status != "open"),
        total=len(tasks),
        outcome=replace(outcome, state=state),
        mine=found.taken_by == principal.user_id,
        supervisor=principal.may(SUPERVISORS),
    )
    response = page(request, TEMPLATE, "pick", status_code=outcome.status, view=view)
    if is_fragment_request(request):
        trigger = _trigger(outcome)
        if trigger:
            response.headers["HX-Trigger-After-Settle"] = json.dumps(trigger)
    return response


def _trigger(outcome: Outcome) -> dict[str, Any] | None:
    """scanner.js plays a buzz and red for a refusal, a beep and green otherwise."""
    if outcome.problem is not None:
        return {"scan-error": {"field": outcome.problem_field or "scan"}}
    if outcome.notice is not None:
        return {"scan-ok": {"recorded": True}}
    if outcome.scanned:
        return {"scan-ok": {"recorded": False, "step": outcome.state.step}}
    return None
