"""The steps of a flow: each scan checked as it comes, then the change recorded once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.queries.users import SiteRow
from app.db.session import Busy
from app.domain.access import SUPERVISORS, Principal
from app.domain.ledger import MovementKind
from app.domain.scan import Gs1Data, Scan, classify_scan
from app.routes.common import principal_of, site_for
from app.routes.scan_flows.flows import (
    DIRECTIONS,
    FLOWS,
    MAX_LINES,
    REASONS,
    WRONG_KIND,
    Flow,
    Line,
    State,
    new_key,
    one,
)
from app.routes.scan_flows.views import Notice, Outcome, Problem, render_flow
from app.services.errors import Invalid, NotFound, Refused
from app.services.stock import (
    MAX_QUANTITY,
    Actor,
    CountLine,
    OpenPickWork,
    ProductRef,
    StockChange,
    count_location,
    find_location,
    find_product,
    record_stock_change,
)
from app.web.context import AppContext
from app.web.i18n import gettext as _
from app.web.i18n import ngettext


async def show_flow(request: Request[Any, Any, Any], ctx: AppContext, flow: Flow, site_code: str) -> Template:
    principal = principal_of(request)
    site = await site_for(ctx, principal, site_code)
    return await render_flow(request, ctx, flow, site, principal, Outcome(State.start(flow)))


async def advance_flow(
    request: Request[Any, Any, Any], ctx: AppContext, flow: Flow, site_code: str, data: dict[str, Any]
) -> Template:
    principal = principal_of(request)
    site = await site_for(ctx, principal, site_code)
    state = State.read(flow, data)
    action, scan = one(data, "action").strip(), one(data, "scan").strip()[:200]
    override = one(data, "override") == "1" and principal.may(SUPERVISORS)
    try:
        outcome = await _next(ctx, flow, site, principal, state, action, scan, override)
    except Refused as refusal:
        outcome = _refused(state, refusal, scanned=bool(scan))
    return await render_flow(request, ctx, flow, site, principal, outcome)


# ---------------------------------------------------------------- the steps


async def _next(
    ctx: AppContext,
    flow: Flow,
    site: SiteRow,
    principal: Principal,
    state: State,
    action: str,
    scan: str,
    override: bool,
) -> Outcome:
    """The state after a scan or a button; refusals of a scan or of a field raise."""
    if action == "cancel":
        return Outcome(State.start(flow))
    if scan:  # a scan wins over any button: it is what the operator just did
        async with ctx.db.reads() as session:
            return Outcome(await _on_scan(session, flow, site.id, state, classify_scan(scan)), scanned=True)
    if action == "drop" or action.startswith("remove:"):
        return Outcome(_edit_lines(flow, state, action))
    if action == "edit":
        return Outcome(replace(state, step="details"))
    if state.step == "details" and action in ("next", "add"):
        async with ctx.db.reads() as session:
            product = await find_product(session, state.product)
        quantity = _check_details(flow, state, product)
        if flow.counts:
            if len(state.lines) >= MAX_LINES:
                raise Invalid("A count holds at most {max} lines: finish this one first.", max=MAX_LINES)
            line = Line(product.sku, state.lot, quantity)
            return Outcome(replace(_without_line(state), step="product", lines=(*state.lines, line)))
        return Outcome(replace(state, step=flow.after("details")))
    if flow.counts and state.step == "product" and action in ("finish", "empty"):
        return await _finish_count(ctx, site, principal, state, empty=action == "empty", override=override)
    if not flow.counts and state.step == "confirm" and action == "confirm":
        return await _record(ctx, flow, site, principal, state)
    return Outcome(state)


async def _on_scan(session: AsyncSession, flow: Flow, site_id: int, state: State, scan: Scan) -> State:
    step = state.step
    if step in ("source", "target", "location"):
        code = await _scanned_location(session, flow, site_id, step, scan)
        if step == "target" and code == state.source:
            raise Invalid("The source and the destination are the same location.", field="scan")
        return replace(state.at(step, code), step=flow.after(step))
    if step == "product":
        if flow.counts and scan.kind == "location":
            raise Invalid("Finish the count of {location} first.", field="scan", location=state.location)
        product, label = await _scanned_product(session, scan)
        return replace(
            state,
            step="details",
            product=product.sku,
            lot=(label.lot or "") if label and product.lot_tracked else "",
            expiry=label.expiry.isoformat() if label and label.expiry and product.expiry_tracked else "",
            quantity=_first_quantity(product, label),
        )
    if step == "details":
        return await _scan_in_details(session, flow, site_id, state, scan)
    raise Invalid("Confirm or cancel this operation first.", field="scan")


async def _scan_in_details(
    session: AsyncSession, flow: Flow, site_id: int, state: State, scan: Scan
) -> State:
    """The same product again adds one (or its GS1 count); a lot label fills the lot; a location ends."""
    product = await find_product(session, state.product)
    label = scan.gs1 if scan.kind == "gs1" else None
    if label is not None and label.gtin is None:  # a label with only a lot and/or a date
        return _with_label(state, product, label, added=0)
    if scan.kind in ("gs1", "gtin", "text"):
        try:
            scanned, label = await _scanned_product(session, scan)
        except NotFound:
            if scan.kind != "text":
                raise
        else:
            if scanned.id != product.id:
                raise Invalid(
                    "Another product ({product}): confirm or cancel this line first.",
                    field="scan",
                    product=scanned.sku,
                )
            # A GS1 count, else what the code stands for: one unit, or a whole case for a case GTIN.
            added = label.quantity if label and label.quantity else scanned.scanned_units
            return _with_label(state, product, label, added=added)
    if flow.scans_target_after_details() and scan.kind in ("location", "text"):
        try:
            code = await _scanned_location(session, flow, site_id, "target", scan)
        except NotFound:
            if scan.kind == "location" or not (product.lot_tracked and not state.lot):
                raise
        else:
            _check_details(flow, state, product)
            if code == state.source:
                raise Invalid("The source and the destination are the same location.", field="scan")
            return replace(state, target=code, step="confirm")
    if scan.kind == "text" and product.lot_tracked and not state.lot:
        return replace(state, lot=scan.value[:64])
    if scan.kind == "location":
        raise Invalid("This is a location: scan a product.", field="scan")
    raise NotFound("Unknown product: {product}.", product=scan.value)


def _first_quantity(product: ProductRef, label: Gs1Data | None) -> str:
    """A GS1 count, or a case's units when a case GTIN was scanned; else left for the operator."""
    if label and label.quantity:
        return str(label.quantity)
    return str(product.scanned_units) if product.scanned_units > 1 else ""


def _with_label(state: State, product: ProductRef, label: Gs1Data | None, *, added: int) -> State:
    lot = label.lot if label and label.lot and product.lot_tracked else ""
    if lot and state.lot and lot != state.lot:
        raise Invalid("Another lot ({lot}): confirm or cancel this line first.", field="scan", lot=lot)
    expiry = label.expiry.isoformat() if label and label.expiry and product.expiry_tracked else ""
    current = int(state.quantity) if state.quantity.isdecimal() else 0
    quantity = str(current + added) if added else state.quantity
    return replace(state, quantity=quantity, lot=lot or state.lot, expiry=expiry or state.expiry)


async def _scanned_location(session: AsyncSession, flow: Flow, site_id: int, step: str, scan: Scan) -> str:
    """The code of the scanned location of this site, if this side of the flow accepts its kind."""
    if scan.kind in ("gs1", "gtin", "invalid_gtin"):
        raise Invalid("Scan the location first.", field="scan")
    # Our labels read LOC-<site>-<code>; classify_scan drops the prefix, the barcode column keeps it.
    reference = f"LOC-{scan.value}" if scan.kind == "location" else scan.value
    try:
        location = await find_location(session, site_id, reference)
    except NotFound:
        if reference == reference.upper():
            raise
        location = await find_location(session, site_id, reference.upper())  # a code keyed in lower case
    allowed = {"source": flow.source_kinds, "target": flow.target_kinds}.get(step, ())
    if allowed and location.kind not in allowed:
        raise Invalid(WRONG_KIND[allowed[0]], field="scan", code=location.code)
    return location.code


async def _scanned_product(session: AsyncSession, scan: Scan) -> tuple[ProductRef, Gs1Data | None]:
    if scan.kind == "location":
        raise Invalid("This is a location: scan a product.", field="scan")
    if scan.kind == "invalid_gtin":
        raise Invalid("{code} is not a valid barcode: scan it again.", field="scan", code=scan.value)
    if scan.kind == "gs1":
        if scan.gs1 is None or scan.gs1.gtin is None:
            raise Invalid("This label carries no product code: scan the product.", field="scan")
        return await find_product(session, scan.gs1.gtin), scan.gs1
    try:
        return await find_product(session, scan.value), None
    except NotFound:
        if scan.value == scan.value.upper():
            raise
        return await find_product(session, scan.value.upper()), None  # a SKU keyed in lower case


def _check_details(flow: Flow, state: State, product: ProductRef) -> int:
    """Refuse a missing or malformed field before anything is recorded; return the quantity."""
    text = state.quantity
    if not (text.isascii() and text.isdecimal()) or (int(text) == 0 and not flow.counts):
        if flow.counts:
            raise Invalid("The count must be a whole number, 0 or more.", field="quantity")
        raise Invalid("The quantity must be a whole number above zero.", field="quantity")
    if int(text) > MAX_QUANTITY:
        raise Invalid("The quantity must be at most {max}.", field="quantity", max=MAX_QUANTITY)
    if product.lot_tracked and not state.lot:
        raise Invalid("Product {sku} is tracked by lot: scan or enter the lot.", field="lot", sku=product.sku)
    parse_expiry(state.expiry)
    if flow.kind is MovementKind.ADJUSTMENT:
        if state.direction not in dict(DIRECTIONS):
            raise Invalid("Choose whether stock goes out or comes in.", field="direction")
        if state.reason not in dict(REASONS):
            raise Invalid("An adjustment needs a reason.", field="reason")
        if state.reason == "other" and not state.note:
            raise Invalid("Describe the reason.", field="note")
    return int(text)


def parse_expiry(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("The expiry date is not a valid date.", field="expiry") from None


def _without_line(state: State) -> State:
    return replace(state, product="", lot="", expiry="", quantity="")


def _edit_lines(flow: Flow, state: State, action: str) -> State:
    """Drop the product being keyed ("drop": back to the product scan, locations kept) or a counted line."""
    if action == "drop":
        target = "" if flow.scans_target_after_details() else state.target
        return replace(_without_line(state), step="product", target=target)
    index = action.removeprefix("remove:")
    if index.isdecimal() and int(index) < len(state.lines):
        lines = state.lines[: int(index)] + state.lines[int(index) + 1 :]
        return replace(state, lines=lines)
    return state


# ---------------------------------------------------------------- recording the change


def _actor(principal: Principal) -> Actor:
    return Actor(user_id=principal.user_id, scope=str(principal.user_id))


def _change(flow: Flow, site_id: int, state: State, quantity: int) -> StockChange:
    assert flow.kind is not None
    source, target, reason = state.source or None, state.target or None, None
    if flow.kind is MovementKind.ADJUSTMENT:
        source, target = (state.location, None) if state.direction == "out" else (None, state.location)
        reason = f"{state.reason}: {state.note}" if state.note else state.reason
    creates_lot = source is None
    return StockChange(
        kind=flow.kind,
        site_id=site_id,
        product=state.product,
        quantity=quantity,
        source=source,
        target=target,
        lot=state.lot or None,
        expiry=parse_expiry(state.expiry) if creates_lot else None,
        reason=reason,
    )


async def _record(ctx: AppContext, flow: Flow, site: SiteRow, principal: Principal, state: State) -> Outcome:
    """Record the change once: a replay of the key returns the first answer (or the first refusal)."""
    async with ctx.db.reads() as session:
        product = await find_product(session, state.product)
    change = _change(flow, site.id, state, _check_details(flow, state, product))
    try:
        _status, answer = await record_stock_change(
            ctx.db, change, actor=_actor(principal), idempotency_key=state.key, now=ctx.now()
        )
    except Refused as refusal:
        # The key now holds this refusal: whatever the operator changes next needs a new one.
        return _refused(replace(state, key=new_key()), refusal, scanned=False)
    except Busy:
        return _busy(state)
    signed = change.quantity if change.target else -change.quantity
    message = _(
        flow.recorded,
        quantity=change.quantity,
        signed=f"{signed:+d}",
        product=change.product,
        source=change.source or "",
        target=change.target or "",
        location=state.location,
    )
    if change.lot:
        message += " " + _("Lot {lot}.", lot=change.lot)
    balances = tuple((b["location"], b["on_hand"]) for b in answer.get("balances", []) if b.get("location"))
    return Outcome(State.start(flow, state.first_location), notice=Notice(message, balances))


async def _finish_count(
    ctx: AppContext, site: SiteRow, principal: Principal, state: State, *, empty: bool, override: bool
) -> Outcome:
    """Post every counted line at once: a blind count of the whole location."""
    if not state.lines and not empty:
        message = _(
            "Nothing counted yet: scan each product, or confirm that {location} is empty.",
            location=state.location,
        )
        return Outcome(state, problem=Problem(message, "scan"), status=422, offer_empty=True)
    lines = [] if empty else [CountLine(line.product, line.lot or None, line.counted) for line in state.lines]
    try:
        await count_location(
            ctx.db,
            site.id,
            state.location,
            lines,
            override=override,
            actor=_actor(principal),
            idempotency_key=state.key,
            now=ctx.now(),
        )
    except Refused as refusal:
        outcome = _refused(replace(state, key=new_key()), refusal, scanned=False)
        return replace(outcome, offer_override=isinstance(refusal, OpenPickWork))
    except Busy:
        return _busy(state)
    message = ngettext(
        "Count of {location} recorded: {num} line.",
        "Count of {location} recorded: {num} lines.",
        len(lines),
        location=state.location,
    )
    return Outcome(State.start(FLOWS["count"]), notice=Notice(message))


def _busy(state: State) -> Outcome:
    """Colliding transactions outlasted the retries: nothing was recorded, so the same key may try again."""
    message = _("The warehouse is very busy: nothing was recorded. Tap again.")
    return Outcome(state, problem=Problem(message), status=503)


def _refused(state: State, refusal: Refused, *, scanned: bool) -> Outcome:
    problem_field = refusal.field if isinstance(refusal, Invalid) else None
    if problem_field in ("quantity", "lot", "expiry", "direction", "reason", "note"):
        state = replace(state, step="details")  # back to where that field is keyed
    # A scan of an unknown code is a form to correct (422), not a missing page.
    status = 422 if isinstance(refusal, NotFound) else refusal.status
    message = _(refusal.message, **refusal.facts)
    return Outcome(state, problem=Problem(message, problem_field), status=status, scanned=scanned)


# ---------------------------------------------------------------- the screen
