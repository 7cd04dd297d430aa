"""Dispatch orders on screen: the list of a site, one order with its lines, the new-order form.

Everyone working at a site sees its orders; supervisors create, release and cancel them. Every
change carries the idempotency key drawn with its form, so a double tap records it once; after a
refusal the form comes back with a fresh key, so the corrected request is a new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.db.models.orders import ORDER_STATES
from app.db.queries.destinations import destination_choices
from app.db.queries.orders import OPEN, OrderDetail, order_detail, order_page, order_trail
from app.db.queries.stock_views import site_zone
from app.db.queries.users import SiteRow
from app.domain.access import EVERYONE, SUPERVISORS
from app.routes.common import client_ip, principal_of, site_for, site_in, sites_of
from app.routes.scan_flows.flows import Form, many, new_key, one
from app.services.errors import Invalid, NotFound, Refused
from app.services.orders import (
    END_OF_DAY,
    MAX_LINES,
    MAX_PRIORITY,
    MAX_QUANTITY,
    MAX_RELEASE,
    ChangedMeanwhile,
    OrderData,
    OrderLineData,
    ProductChoice,
    cancel_order,
    create_order,
    due_moment,
    edit_order,
    edit_refusal,
    hold_order,
    product_choice,
    release_order,
    release_orders,
)
from app.services.users import Actor
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.i18n import gettext as _
from app.web.templating import page

PAGE_SIZE = 25
NEW_LINES = 3  # empty lines on a fresh form


@dataclass(frozen=True)
class OrderForm:
    """The new-order form as typed: strings, shown back as they were after a refusal."""

    destination: str = ""
    due_date: str = ""
    due_time: str = ""
    priority: str = ""
    lines: tuple[tuple[str, str], ...] = (("", ""),) * NEW_LINES
    key: str = ""
    version: str = ""  # correcting an order: the `updated_at` of the order as the form was drawn from it

    @classmethod
    def of(cls, order: OrderDetail, zone: ZoneInfo) -> OrderForm:
        """An order as its correction form shows it first: a due time at the end of the day left blank (as
        it was given), and one blank line to add a product."""
        due = order.due_at.astimezone(zone)
        return cls(
            order.destination,
            due.date().isoformat(),
            "" if due.time().replace(second=0, microsecond=0) == END_OF_DAY else f"{due:%H:%M}",
            str(order.priority),
            (*((line.sku, str(line.quantity)) for line in order.lines), ("", "")),
            new_key(),
            order.updated_at.isoformat(),
        )

    @classmethod
    def read(cls, data: dict[str, Any]) -> OrderForm:
        typed = zip(many(data, "line_product"), many(data, "line_quantity"), strict=False)
        lines = tuple((product.strip()[:64], quantity.strip()[:12]) for product, quantity in typed)
        return cls(
            one(data, "destination").strip()[:32],
            one(data, "due_date").strip()[:10],
            one(data, "due_time").strip()[:5],
            one(data, "priority").strip()[:4],
            lines or (("", ""),),
            one(data, "idempotency_key").strip()[:128] or new_key(),
            one(data, "version").strip()[:40],
        )

    def retry(self) -> OrderForm:
        """The form shown again after a refusal: a fresh key, and the lines numbered as the refusal counts
        them (blank ones last)."""
        filled = tuple(line for line in self.lines if any(line))
        blanks = (("", ""),) * max(1, NEW_LINES - len(filled))
        return replace(self, lines=filled + blanks, key=new_key())

    def reshaped(self, action: str) -> OrderForm | None:
        """The form with a line added ("add-line") or line n taken out ("remove-line-<n>"), the rest as
        typed; None for any other action (a save)."""
        if action == "add-line":
            return replace(self, lines=(*self.lines, ("", "")))
        if not action.startswith("remove-line-"):
            return None
        number = action.removeprefix("remove-line-")
        if not (number.isdecimal() and 1 <= int(number) <= len(self.lines)):
            return self  # a line that is not there (a stale page): the form as it is
        n = int(number)
        return replace(self, lines=self.lines[: n - 1] + self.lines[n:] or (("", ""),))

    def seen_version(self) -> datetime | None:
        """The version of the order the form was drawn from (None if absent or garbled: not checked)."""
        try:
            return datetime.fromisoformat(self.version) if self.version else None
        except ValueError:
            return None

    def order(self, site_id: int, zone: ZoneInfo, *, release: bool) -> OrderData:
        """The order this form asks for; Invalid names the field a person must correct."""
        try:
            day = date.fromisoformat(self.due_date)
            at = time.fromisoformat(self.due_time) if self.due_time else None
        except ValueError:
            raise Invalid("Enter the due date.", field="due_at") from None
        if self.priority and not self.priority.isdecimal():
            raise Invalid(
                "The priority is a whole number from 1 (served first) to {max}.",
                field="priority",
                max=MAX_PRIORITY,
            )
        lines = []
        for n, (product, quantity) in enumerate((line for line in self.lines if any(line)), start=1):
            if not quantity.isdecimal():
                raise Invalid(
                    "Line {line}: the quantity is a whole number from 1 to {max}.",
                    field="lines",
                    line=n,
                    max=MAX_QUANTITY,
                )
            lines.append(OrderLineData(product, int(quantity)))
        due = due_moment(datetime.combine(day, at) if at else day, zone)
        priority = int(self.priority) if self.priority else None
        return OrderData(site_id, self.destination, due, tuple(lines), priority, None, "screen", release)


def _done(request: Request[Any, Any, Any], target: str) -> Response[Any]:
    """After a change: to the order's page, the htmx way when htmx asked."""
    if request.headers.get("hx-request"):
        response = ClientRedirect(target)
        response.status_code = 200  # htmx acts on HX-Redirect in a 2xx answer
        return response
    return Redirect(target, status_code=303)


def _error(refusal: Refused) -> dict[str, Any]:
    """A refusal as a form shows it: the field to mark, the message, and its facts (a line number)."""
    message = _(refusal.message, **refusal.facts)
    return {"field": getattr(refusal, "field", None), "message": message, "facts": refusal.facts}


class OrdersController(Controller):
    path = "/sites/{site:str}/orders"
    opt = access(EVERYONE)

    @get("/", name="orders:list")
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        q: FromQuery[str] = "",
        wanted: Annotated[str, QueryParameter(name="state")] = "",
        page_no: FromQuery[int] = 1,
        released: Annotated[int, QueryParameter(ge=0, le=MAX_RELEASE)] = 0,
        left: Annotated[int, QueryParameter(ge=0, le=MAX_RELEASE)] = 0,
    ) -> Template:
        """The orders of a site, open ones first by due time; late ones stand out. `released` and `left`:
        what a release of ticked drafts did (shown once, after its redirect)."""
        here = await site_for(ctx, principal_of(request), site)
        return await _list_page(request, ctx, here, q, wanted, page_no, released=released, left=left)

    @post("/release", name="orders:release-drafts", opt=access(SUPERVISORS), status_code=303)
    async def release_drafts(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Response[Any]:
        """Release the ticked drafts, then back to the list as it was, saying what was done."""
        here = await site_for(ctx, principal_of(request), site)
        q, state = one(data, "q")[:64], one(data, "state")[:16]
        ticked = [value for value in many(data, "order") if value.isdecimal() and len(value) < 19]
        try:
            _status, answer = await release_orders(
                ctx.db,
                here.id,
                [int(value) for value in ticked],
                actor=Actor.of(principal_of(request), client_ip(request)),
                idempotency_key=one(data, "idempotency_key"),
                now=ctx.now(),
            )
        except Refused as refusal:
            return await _list_page(
                request, ctx, here, q, state, 1, error=_error(refusal), status=refusal.status
            )
        shown = {"q": q, "state": state, "released": len(answer["released"]), "left": answer["left"]}
        target = request.app.route_reverse("orders:list", site=here.code)
        return _done(request, target + "?" + urlencode({k: v for k, v in shown.items() if v}))

    @get("/new", name="orders:new", opt=access(SUPERVISORS))
    async def new_order(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        here = await site_for(ctx, principal_of(request), site)
        async with ctx.db.reads() as session:
            tomorrow = (ctx.now().astimezone(await site_zone(session, here.id)) + timedelta(days=1)).date()
        return await _form(request, ctx, here, OrderForm(due_date=tomorrow.isoformat(), key=new_key()))

    @post("/new", name="orders:create", opt=access(SUPERVISORS), status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Response[Any]:
        """Create the order (released at once with the "create and release" button), or add a line."""
        here, form = await site_for(ctx, principal_of(request), site), OrderForm.read(data)
        action = one(data, "action")
        if reshaped := form.reshaped(action):
            return await _form(request, ctx, here, reshaped)
        return await _create(request, ctx, here, form, release=action == "release")

    @get("/new/product", name="orders:product", opt=access(SUPERVISORS))
    async def product(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        line: Annotated[int, QueryParameter(ge=1, le=MAX_LINES)],
        line_product: FromQuery[str] = "",
    ) -> Template:
        """What a line's product field names, as it is typed: the product and its stock, or choices."""
        async with ctx.db.reads() as session:  # one connection for the site check and the lookup
            here = await site_in(session, principal_of(request), site)
            choice = await product_choice(session, here.id, line_product[:64])
        return Template("orders/_product.html", context={"n": line, "choice": choice})

    @get("/{order_id:int}", name="orders:detail")
    async def detail(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], order_id: FromPath[int]
    ) -> Template:
        """One order: its lines with ordered, allocated, picked, shipped and still needed units."""
        here = await site_for(ctx, principal_of(request), site)
        return await _detail(request, ctx, here, await _order(ctx, here, order_id))

    @get("/{order_id:int}/edit", name="orders:edit", opt=access(SUPERVISORS))
    async def edit(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], order_id: FromPath[int]
    ) -> Template:
        """The order in the new-order form, to correct while no stock was reserved for it."""
        here = await site_for(ctx, principal_of(request), site)
        order = await _order(ctx, here, order_id)
        if refusal := edit_refusal(order):  # a stale link: the order's page says why
            return await _detail(request, ctx, here, order, _error(refusal), status_code=refusal.status)
        async with ctx.db.reads() as session:
            zone = await site_zone(session, here.id)
        return await _form(request, ctx, here, OrderForm.of(order, zone), order=order)

    @post("/{order_id:int}/edit", name="orders:update", opt=access(SUPERVISORS), status_code=303)
    async def update(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        order_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """Save the corrections (or add a line to the form), then back to the order."""
        here, form = await site_for(ctx, principal_of(request), site), OrderForm.read(data)
        order = await _order(ctx, here, order_id)
        if reshaped := form.reshaped(one(data, "action")):
            return await _form(request, ctx, here, reshaped, order=order)
        try:
            async with ctx.db.reads() as session:
                zone = await site_zone(session, here.id)
            await edit_order(
                ctx.db,
                order_id,
                form.order(here.id, zone, release=False),
                version=form.seen_version(),
                actor=Actor.of(principal_of(request), client_ip(request)),
                idempotency_key=form.key,
                now=ctx.now(),
            )
        except Refused as refusal:
            order = await _order(ctx, here, order_id)
            if not order.editable:
                return await _detail(request, ctx, here, order, _error(refusal), status_code=refusal.status)
            retry, error = form.retry(), _error(refusal)
            if isinstance(refusal, ChangedMeanwhile):  # shown, and saving again is a choice made knowingly
                retry = replace(retry, version=order.updated_at.isoformat())
                error["hint"] = _(
                    "Save again to replace their changes with yours, or leave without saving to see them."
                )
            return await _form(request, ctx, here, retry, error, refusal.status, order=order)
        return _done(request, request.app.route_reverse("orders:detail", site=here.code, order_id=order_id))

    @post("/{order_id:int}/release", name="orders:release", opt=access(SUPERVISORS), status_code=303)
    async def release(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        order_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        return await _move(request, ctx, site, order_id, data, release_order)

    @post("/{order_id:int}/hold", name="orders:hold", opt=access(SUPERVISORS), status_code=303)
    async def hold(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        order_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        return await _move(request, ctx, site, order_id, data, hold_order)

    @post("/{order_id:int}/cancel", name="orders:cancel", opt=access(SUPERVISORS), status_code=303)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        order_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        return await _move(request, ctx, site, order_id, data, cancel_order)


class OrdersHomeController(Controller):
    @get("/orders", name="orders:home", opt=access(EVERYONE))
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        """The orders of the person's first site (the nav link lands here)."""
        sites = await sites_of(ctx, principal_of(request))
        if not sites:
            raise NotFound("You are not assigned to any site yet. Ask an administrator.")
        return Redirect(request.app.route_reverse("orders:list", site=sites[0].code), status_code=303)


async def _list_page(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    q: str,
    wanted: str,
    page_no: int,
    *,
    released: int = 0,
    left: int = 0,
    error: dict[str, Any] | None = None,
    status: int = 200,
) -> Template:
    """A page of the site's orders, with what a release of ticked drafts did (or why it was refused)."""
    principal, page_no = principal_of(request), max(page_no, 1)
    state = wanted if wanted in (*ORDER_STATES, OPEN) else ""
    async with ctx.db.reads() as session:
        rows, total = await order_page(
            session,
            [site.id],
            state=state,
            q=q,
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
            now=ctx.now(),
        )
    return page(
        request,
        "orders/index.html",
        "results",
        status_code=status,
        site=site,
        sites=await sites_of(ctx, principal),
        orders=rows,
        total=total,
        q=q,
        state=state,
        states=(OPEN, *ORDER_STATES),
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
        supervisor=principal.may(SUPERVISORS),
        released=released,
        left=left,
        error=error,
        key=new_key(),
    )


async def _create(
    request: Request[Any, Any, Any], ctx: AppContext, site: SiteRow, form: OrderForm, *, release: bool
) -> Response[Any]:
    """Create the order, then to its page; a refusal shows the form again, as typed, with a fresh key."""
    try:
        async with ctx.db.reads() as session:
            zone = await site_zone(session, site.id)
        _status, answer = await create_order(
            ctx.db,
            form.order(site.id, zone, release=release),
            actor=Actor.of(principal_of(request), client_ip(request)),
            idempotency_key=form.key,
            now=ctx.now(),
        )
    except Refused as refusal:
        return await _form(request, ctx, site, form.retry(), _error(refusal), status_code=refusal.status)
    return _done(request, request.app.route_reverse("orders:detail", site=site.code, order_id=answer["id"]))


async def _order(ctx: AppContext, site: SiteRow, order_id: int) -> OrderDetail:
    """The order, if it belongs to this site (the site itself was checked against the person)."""
    async with ctx.db.reads() as session:
        found = await order_detail(session, order_id, ctx.now())
    if found is None or found.site_id != site.id:
        raise NotFoundException()
    return found


async def _move(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: str,
    order_id: int,
    data: dict[str, Any],
    use_case: Callable[..., Awaitable[tuple[int, dict[str, Any]]]],
) -> Response[Any]:
    """Release, hold or cancel, then back to the order; a refusal shows on the order's page with a fresh
    key."""
    here = await site_for(ctx, principal_of(request), site)
    await _order(ctx, here, order_id)
    try:
        await use_case(
            ctx.db,
            order_id,
            actor=Actor.of(principal_of(request), client_ip(request)),
            idempotency_key=one(data, "idempotency_key"),
            now=ctx.now(),
        )
    except Refused as refusal:
        order = await _order(ctx, here, order_id)
        return await _detail(request, ctx, here, order, _error(refusal), status_code=refusal.status)
    target = request.app.route_reverse("orders:detail", site=here.code, order_id=order_id)
    return _done(request, target)


async def _detail(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    order: OrderDetail,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    """The order's page: its lines, and where its stock went (lists, shipments, backorders)."""
    async with ctx.db.reads() as session:
        trail = await order_trail(session, order.id)
    return page(
        request,
        "orders/detail.html",
        "detail",
        status_code=status_code,
        site=site,
        order=order,
        trail=trail,
        error=error,
        key=new_key(),
        supervisor=principal_of(request).may(SUPERVISORS),
    )


async def _form(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    form: OrderForm,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    order: OrderDetail | None = None,
) -> Template:
    """The new-order form, or the correction form of `order`."""
    async with ctx.db.reads() as session:
        destinations = await destination_choices(session)
        # What each typed product names, as the field said it while it was typed (up to the lines an order
        # may have: a form posted with thousands more does not cost a lookup each).
        choices = [
            await product_choice(session, site.id, product) if n < MAX_LINES else ProductChoice("")
            for n, (product, _quantity) in enumerate(form.lines)
        ]
    return page(
        request,
        "orders/edit.html" if order else "orders/new.html",
        "form",
        status_code=status_code,
        site=site,
        order=order,
        form=form,
        destinations=destinations,
        choices=choices,
        error=error,
    )
