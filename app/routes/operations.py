"""Scan flows of the warehouse floor: receiving, putaway, transfers, cycle counts and adjustments.

Each flow is one htmx form walked step by step: location, product (or its GS1 label), quantity, lot
and expiry when the product needs them, confirm. The server keeps nothing between steps: the state
travels in hidden fields, each scan is checked as it arrives (an unknown code is refused at once, with
the code), and the change itself carries the idempotency key drawn with the form, so a double tap or
a retry on a flaky network records it once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Product
from app.db.queries.operations import LotChoice, RecentRow, lots_with_free_stock, recent_movements
from app.db.queries.users import SiteRow
from app.db.session import Busy
from app.domain.access import EVERYONE, SUPERVISORS, Principal
from app.domain.ledger import MovementKind
from app.domain.scan import Gs1Data, Scan, classify_scan
from app.routes.common import principal_of, site_for
from app.services.errors import N_, Invalid, NotFound, Refused
from app.services.stock import (
    MAX_QUANTITY,
    Actor,
    CountLine,
    OpenPickWork,
    StockChange,
    count_location,
    find_location,
    find_product,
    record_stock_change,
)
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.i18n import gettext as _
from app.web.i18n import ngettext
from app.web.templating import is_fragment_request, page

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

MAX_LINES = 200
RECENT_WINDOW = timedelta(hours=12)
RECENT_LIMIT = 5
TEMPLATE = "operations/flow.html"


@dataclass(frozen=True)
class Flow:
    """One scan flow: its steps, the movement it records, and the kinds of location each side accepts."""

    name: str
    title: str
    steps: tuple[str, ...]
    kind: MovementKind | None = None  # None: a blind count
    source_kinds: tuple[str, ...] = ()  # empty: any kind
    target_kinds: tuple[str, ...] = ()
    recorded: str = ""  # the confirmation, a msgid

    @property
    def counts(self) -> bool:
        return self.kind is None

    @property
    def first_location(self) -> str:
        return self.steps[0]

    def after(self, step: str) -> str:
        return self.steps[min(self.steps.index(step) + 1, len(self.steps) - 1)]

    def scans_target_after_details(self) -> bool:
        return "target" in self.steps[self.steps.index("details") :]


FLOWS = {
    "receive": Flow(
        "receive",
        N_("Receiving"),
        ("target", "product", "details", "confirm"),
        MovementKind.RECEIPT,
        target_kinds=("receiving",),
        recorded=N_("Received {quantity} × {product} at {target}."),
    ),
    "putaway": Flow(
        "putaway",
        N_("Putaway"),
        ("source", "product", "details", "target", "confirm"),
        MovementKind.PUTAWAY,
        source_kinds=("receiving",),
        target_kinds=("storage",),
        recorded=N_("Put away {quantity} × {product}: {source} → {target}."),
    ),
    "move": Flow(
        "move",
        N_("Transfer"),
        ("source", "product", "details", "target", "confirm"),
        MovementKind.TRANSFER,
        recorded=N_("Moved {quantity} × {product}: {source} → {target}."),
    ),
    "count": Flow("count", N_("Cycle count"), ("location", "product", "details")),
    "adjust": Flow(
        "adjust",
        N_("Adjustment"),
        ("location", "product", "details", "confirm"),
        MovementKind.ADJUSTMENT,
        recorded=N_("Adjusted {location}: {signed} × {product}."),
    ),
}
WRONG_KIND = {
    "receiving": N_("{code} is not a receiving dock."),
    "storage": N_("{code} is not a storage location."),
}
PROMPTS = {
    ("receive", "target"): N_("Scan the receiving dock"),
    ("putaway", "source"): N_("Scan the receiving dock"),
    ("putaway", "target"): N_("Scan the storage location"),
    ("move", "source"): N_("Scan the location to take stock from"),
    ("move", "target"): N_("Scan the destination location"),
    ("count", "location"): N_("Scan the location to count"),
    ("adjust", "location"): N_("Scan the location"),
}
STEP_LABELS = {
    "source": N_("From"),
    "target": N_("To"),
    "location": N_("Location"),
    "product": N_("Product"),
    "details": N_("Quantity"),
    "confirm": N_("Confirm"),
}
REASONS = (
    ("damaged", N_("Damaged")),
    ("expired", N_("Past its expiry date")),
    ("lost", N_("Lost or stolen")),
    ("found", N_("Found")),
    ("quality", N_("Quality sample")),
    ("entry_error", N_("Entry error")),
    ("other", N_("Other")),
)
DIRECTIONS = (("out", N_("Take out of stock")), ("in", N_("Put into stock")))
RECENT_KINDS = {
    "receive": ("receipt",),
    "putaway": ("putaway",),
    "move": ("transfer",),
    "adjust": ("adjustment",),
    "count": ("count_correction",),
}


def new_key() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------- the state the form carries


@dataclass(frozen=True)
class Line:
    """One counted line of a blind count, as keyed."""

    product: str
    lot: str
    counted: int


@dataclass(frozen=True)
class State:
    step: str
    key: str  # the idempotency key of the change this form will record
    source: str = ""
    target: str = ""
    location: str = ""
    product: str = ""
    lot: str = ""
    expiry: str = ""
    quantity: str = ""
    direction: str = ""
    reason: str = ""
    note: str = ""
    lines: tuple[Line, ...] = ()

    @classmethod
    def start(cls, flow: Flow, location: str = "") -> State:
        """A fresh form, with a fresh key; `location` keeps the first location for the next product."""
        fresh = cls(step=flow.first_location, key=new_key())
        return replace(fresh.at(flow.first_location, location), step="product") if location else fresh

    def at(self, side: str, code: str) -> State:
        """This state with `code` as its source, target or (counted, adjusted) location."""
        return replace(
            self,
            source=code if side == "source" else self.source,
            target=code if side == "target" else self.target,
            location=code if side == "location" else self.location,
        )

    @classmethod
    def read(cls, flow: Flow, data: dict[str, Any]) -> State:
        def text(name: str, limit: int = 64) -> str:
            return _one(data, name).strip()[:limit]

        lines = []
        for product, lot, counted in zip(
            _many(data, "line_product"), _many(data, "line_lot"), _many(data, "line_counted"), strict=False
        ):
            if product.strip() and counted.strip().isdecimal():
                lines.append(Line(product.strip()[:64], lot.strip()[:64], int(counted)))
        step = text("step")
        return cls(
            step=step if step in flow.steps else flow.steps[0],
            key=text("idempotency_key", 128),
            source=text("source"),
            target=text("target"),
            location=text("location"),
            product=text("product"),
            lot=text("lot"),
            expiry=text("expiry", 10),
            quantity=text("quantity", 12),
            direction=text("direction", 8),
            reason=text("reason", 16),
            note=text("note", 150),
            lines=tuple(lines[:MAX_LINES]),
        )

    @property
    def first_location(self) -> str:
        return self.source or self.location or self.target


def _many(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _one(data: dict[str, Any], name: str) -> str:
    values = _many(data, name)
    return values[0] if values else ""


# ---------------------------------------------------------------- what a step answers


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


class OperationsController(Controller):
    """One GET (a fresh form) and one POST (the next step) per flow, on a site the user works on."""

    path = "/sites/{site:str}"
    opt = access(EVERYONE)

    @get("/receive", name="operations:receive")
    async def receive(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _show(request, ctx, FLOWS["receive"], site)

    @post("/receive", name="operations:receive-step", status_code=200)
    async def receive_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await _advance(request, ctx, FLOWS["receive"], site, data)

    @get("/putaway", name="operations:putaway")
    async def putaway(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _show(request, ctx, FLOWS["putaway"], site)

    @post("/putaway", name="operations:putaway-step", status_code=200)
    async def putaway_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await _advance(request, ctx, FLOWS["putaway"], site, data)

    @get("/move", name="operations:move")
    async def move(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _show(request, ctx, FLOWS["move"], site)

    @post("/move", name="operations:move-step", status_code=200)
    async def move_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await _advance(request, ctx, FLOWS["move"], site, data)

    @get("/count", name="operations:count")
    async def count(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _show(request, ctx, FLOWS["count"], site)

    @post("/count", name="operations:count-step", status_code=200)
    async def count_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await _advance(request, ctx, FLOWS["count"], site, data)

    @get("/adjust", name="operations:adjust", opt=access(SUPERVISORS))
    async def adjust(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        return await _show(request, ctx, FLOWS["adjust"], site)

    @post("/adjust", name="operations:adjust-step", opt=access(SUPERVISORS), status_code=200)
    async def adjust_step(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Template:
        return await _advance(request, ctx, FLOWS["adjust"], site, data)


async def _show(request: Request[Any, Any, Any], ctx: AppContext, flow: Flow, site_code: str) -> Template:
    principal = principal_of(request)
    site = await site_for(ctx, principal, site_code)
    return await _render(request, ctx, flow, site, principal, Outcome(State.start(flow)))


async def _advance(
    request: Request[Any, Any, Any], ctx: AppContext, flow: Flow, site_code: str, data: dict[str, Any]
) -> Template:
    principal = principal_of(request)
    site = await site_for(ctx, principal, site_code)
    state = State.read(flow, data)
    action, scan = _one(data, "action").strip(), _one(data, "scan").strip()[:200]
    override = _one(data, "override") == "1" and principal.may(SUPERVISORS)
    try:
        outcome = await _next(ctx, flow, site, principal, state, action, scan, override)
    except Refused as refusal:
        outcome = _refused(state, refusal, scanned=bool(scan))
    return await _render(request, ctx, flow, site, principal, outcome)


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
            quantity=str(label.quantity) if label and label.quantity else "",
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
            added = label.quantity if label and label.quantity else 1  # a GS1 count, else one more
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


def _with_label(state: State, product: Product, label: Gs1Data | None, *, added: int) -> State:
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


async def _scanned_product(session: AsyncSession, scan: Scan) -> tuple[Product, Gs1Data | None]:
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


def _check_details(flow: Flow, state: State, product: Product) -> int:
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
    _expiry(state.expiry)
    if flow.kind is MovementKind.ADJUSTMENT:
        if state.direction not in dict(DIRECTIONS):
            raise Invalid("Choose whether stock goes out or comes in.", field="direction")
        if state.reason not in dict(REASONS):
            raise Invalid("An adjustment needs a reason.", field="reason")
        if state.reason == "other" and not state.note:
            raise Invalid("Describe the reason.", field="note")
    return int(text)


def _expiry(text: str) -> date | None:
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
        expiry=_expiry(state.expiry) if creates_lot else None,
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


async def _render(
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
        product = await _product_or_none(session, state.product)
        lots: list[LotChoice] = []
        stock_at = state.source or (state.location if flow.name == "adjust" else "")
        if product and product.lot_tracked and state.step == "details" and stock_at:
            lots = await lots_with_free_stock(session, site.id, stock_at, product.id)
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
        product=_product_view(product),
        lots=lots,
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


def _product_view(product: Product | None) -> ProductView | None:
    if product is None:
        return None
    return ProductView(
        product.sku, product.name, product.pack_size, product.lot_tracked, product.expiry_tracked
    )


async def _product_or_none(session: AsyncSession, reference: str) -> Product | None:
    if not reference:
        return None
    try:
        return await find_product(session, reference)
    except NotFound:
        return None
