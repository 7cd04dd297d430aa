"""JSON API v1 of the demand: destinations, and dispatch orders with their edit, release and cancellation.

Bearer token only, RFC 9457 problems, msgspec bodies that refuse unknown keys, an `Idempotency-Key`
on every POST and PUT, and orders scoped to the sites the caller works on (see app/routes/api_stock.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.orders import ORDER_STATES
from app.db.queries.destinations import DestinationRow, destination_page
from app.db.queries.orders import OPEN, OrderDetail, OrderRow, order_detail, order_page, order_site
from app.domain.access import EVERYONE, SUPERVISORS, Principal
from app.routes.api_stock import (
    INT4_MAX,
    IdempotencyKey,
    Limit,
    Offset,
    OutsideYourSites,
    SiteCode,
    _ApiController,
    _site,
    _sites,
    problem_specs,
)
from app.routes.common import client_ip, principal_of
from app.services.destinations import DestinationData, save_destination
from app.services.errors import N_, Invalid, NotFound
from app.services.orders import (
    OrderData,
    OrderLineData,
    cancel_order,
    create_order,
    edit_order,
    hold_order,
    release_order,
)
from app.services.users import Actor
from app.web.auth import access
from app.web.context import AppContext, Ctx

# --- bodies and answers -------------------------------------------------------------------------


class DestinationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A destination by code: created if new, else updated (address and contact: see their fields)."""

    code: str
    name: str
    tier: Annotated[int, msgspec.Meta(le=INT4_MAX, description="1 is served first.")]
    min_units: Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)] | None = None
    max_units: Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)] | None = None
    kind: Literal["store", "branch", "customer"] = "store"
    quota_percent: Annotated[float, msgspec.Meta(description="For the quota policy, 0 to 100.")] | None = None
    address: (
        Annotated[
            str,
            msgspec.Meta(description="Stored encrypted. Omitted or null: kept as stored; empty: cleared."),
        ]
        | None
    ) = None
    contact: (
        Annotated[
            str,
            msgspec.Meta(description="Stored encrypted. Omitted or null: kept as stored; empty: cleared."),
        ]
        | None
    ) = None
    is_active: bool = True


class OrderLineBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    product: Annotated[str, msgspec.Meta(description="A SKU or a GTIN.")]
    quantity: Annotated[int, msgspec.Meta(le=INT4_MAX, description="Units (not packs).")]


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    site: str
    destination: Annotated[str, msgspec.Meta(description="A destination code.")]
    due_at: Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339, with its offset.")]
    lines: list[OrderLineBody]
    priority: (
        Annotated[int, msgspec.Meta(le=INT4_MAX, description="Default: the destination's tier.")] | None
    ) = None
    number: Annotated[str, msgspec.Meta(description="Default: CMD-<day>-<n>.")] | None = None
    release: Annotated[bool, msgspec.Meta(description="Release at once (default: a draft).")] = False


class OrderEditBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an order becomes: its destination, due time, priority and lines, replaced as given."""

    destination: Annotated[str, msgspec.Meta(description="A destination code.")]
    due_at: Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339, with its offset.")]
    lines: list[OrderLineBody]
    priority: (
        Annotated[int, msgspec.Meta(le=INT4_MAX, description="Default: the destination's tier.")] | None
    ) = None
    updated_at: (
        Annotated[
            datetime,
            msgspec.Meta(
                tz=True,
                description="The order's `updated_at` as you read it: if it changed since, 409 and nothing "
                "is written. Omitted: not checked.",
            ),
        ]
        | None
    ) = None


@dataclass(frozen=True)
class DestinationPage:
    items: list[DestinationRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class DestinationSaved:
    """The destination as saved, without its address and contact."""

    code: str
    name: str
    kind: str
    tier: int
    min_units: int | None
    max_units: int | None
    quota_percent: float | None
    is_active: bool
    created: bool
    changed: list[str]


@dataclass(frozen=True)
class OrderPage:
    items: list[OrderRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class OrderEdited(OrderDetail):
    """The order as edited, and the fields the edit changed (`destination`, `due_at`, `priority`,
    `lines`; none when it already stood so)."""

    changed: list[str]


@dataclass(frozen=True)
class OrderMoved:
    """Where an order stands after a release, a hold or a cancellation."""

    id: int
    number: str
    state: str
    released_units: int  # reserved stock given back by a hold or a cancellation


_PROBLEMS = {
    400: "Malformed JSON, or fields of the wrong type or out of range: `errors` lists them.",
    401: "No valid bearer token (POST /api/v1/auth/token); the browser session cookie is not accepted.",
    403: "Your role, or the site of the order (member `site`), is not yours.",
    404: "Unknown order (member `order`).",
    409: "The order's state refuses it (members `number`, `state`; `picked` when units are already "
    "picked), the order number is taken, or the order changed since the `updated_at` given.",
    422: "A value needs correcting (member `field` names it: `lines` for a line, with `line`), "
    "or an Idempotency-Key reused for another body.",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers of an orders or destinations handler."""
    return problem_specs(_PROBLEMS, *statuses)


def _actor(request: Request[Any, Any, Any]) -> Actor:
    return Actor.of(principal_of(request), client_ip(request))


async def _move(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    order_id: int,
    idempotency_key: str | None,
    transition: Callable[..., Awaitable[tuple[int, dict[str, Any]]]],
) -> OrderMoved:
    """One asked-for transition (release, cancel) of an order at one of your sites, replay-safe."""
    async with ctx.db.reads() as session:
        await _order_of_yours(session, principal_of(request), order_id)
    _status, answer = await transition(
        ctx.db, order_id, actor=_actor(request), idempotency_key=idempotency_key or "", now=ctx.now()
    )
    return OrderMoved(**answer)


async def _order_of_yours(session: AsyncSession, principal: Principal, order_id: int) -> int:
    """The order's site; 404 for an unknown order, 403 for one of a site this person does not work at."""
    found = await order_site(session, order_id)
    if found is None:
        raise NotFound("Unknown order: {order}.", order=order_id)
    if not principal.may_work_on(found[0]):
        raise OutsideYourSites(N_("You do not work at site {site}."), site=found[1])
    return found[0]


# --- controllers -------------------------------------------------------------------------------


class ApiDestinationsController(_ApiController):
    path = "/api/v1/destinations"
    tags = ["destinations"]

    @get("/", name="api:destinations-list", opt=access(EVERYONE), responses=problems())
    async def list_destinations(
        self, ctx: Ctx, q: FromQuery[str] = "", limit: Limit = 50, offset: Offset = 0
    ) -> DestinationPage:
        """Destinations by code (never their address or contact); `q` matches part of the code or name."""
        async with ctx.db.reads() as session:
            rows, total = await destination_page(session, q, limit, offset)
        return DestinationPage(rows, total, limit, offset)

    @post(
        "/",
        name="api:destinations-save",
        opt=access(SUPERVISORS),
        status_code=201,
        responses={
            200: ResponseSpec(DestinationSaved, description="Updated or unchanged"),
            **problems(403, 422),
        },
    )
    async def post_destination(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: JSONBody[DestinationBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DestinationSaved]:
        """Create a destination, or update the one with this code: 201 when created, else 200."""
        destination = DestinationData(
            data.code,
            data.name,
            data.kind,
            data.tier,
            data.min_units,
            data.max_units,
            None if data.quota_percent is None else Decimal(str(data.quota_percent)),
            data.address,
            data.contact,
            data.is_active,
        )
        _status, answer = await save_destination(
            ctx.db, destination, actor=_actor(request), idempotency_key=idempotency_key or "", now=ctx.now()
        )
        return Response(DestinationSaved(**answer), status_code=201 if answer["created"] else 200)


class ApiOrdersController(_ApiController):
    path = "/api/v1/orders"
    tags = ["orders"]

    @get("/", name="api:orders-list", opt=access(EVERYONE), responses=problems(403, 422))
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: SiteCode = None,
        wanted: Annotated[
            str | None,
            QueryParameter(name="state", description="A state, or `open` (not dispatched or cancelled)."),
        ] = None,
        destination: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OrderPage:
        """Orders of your sites (or of one), open ones first by due time; filter by state or destination."""
        if wanted is not None and wanted not in (*ORDER_STATES, OPEN):
            raise Invalid("Unknown order state: {state}.", field="state", state=wanted)
        async with ctx.db.reads() as session:
            site_ids = await _sites(session, principal_of(request), site)
            rows, total = await order_page(
                session,
                site_ids,
                state=wanted or "",
                destination=destination or "",
                limit=limit,
                offset=offset,
                now=ctx.now(),
            )
        return OrderPage(rows, total, limit, offset)

    @post(
        "/",
        name="api:orders-create",
        opt=access(SUPERVISORS),
        status_code=201,
        responses=problems(403, 409, 422),
    )
    async def post_order(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: JSONBody[OrderBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderDetail]:
        """Create an order at one of your sites, a draft unless `release` (idempotent)."""
        async with ctx.db.reads() as session:
            site = await _site(session, principal_of(request), data.site)
        order = OrderData(
            site.id,
            data.destination,
            data.due_at,
            tuple(OrderLineData(line.product, line.quantity) for line in data.lines),
            data.priority,
            data.number,
            "api",
            data.release,
        )
        status, answer = await create_order(
            ctx.db, order, actor=_actor(request), idempotency_key=idempotency_key or "", now=ctx.now()
        )
        return Response(msgspec.convert(answer, OrderDetail), status_code=status)

    @get("/{order_id:int}", name="api:orders-show", opt=access(EVERYONE), responses=problems(403, 404))
    async def show_order(
        self, request: Request[Any, Any, Any], ctx: Ctx, order_id: FromPath[int]
    ) -> OrderDetail:
        """One order with its lines: ordered, allocated, picked, shipped and still needed units."""
        async with ctx.db.reads() as session:
            await _order_of_yours(session, principal_of(request), order_id)
            detail = await order_detail(session, order_id, ctx.now())
        if detail is None:
            raise NotFound("Unknown order: {order}.", order=order_id)
        return detail

    @put(
        "/{order_id:int}",
        name="api:orders-edit",
        opt=access(SUPERVISORS),
        responses=problems(403, 404, 409, 422),
    )
    async def edit(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        order_id: FromPath[int],
        data: JSONBody[OrderEditBody],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderEdited:
        """Edit a draft, or a released order no dispatch run reserved stock for yet: its destination, due
        time, priority and lines are replaced as given; number and state stay (idempotent)."""
        async with ctx.db.reads() as session:
            site_id = await _order_of_yours(session, principal_of(request), order_id)
        order = OrderData(
            site_id,
            data.destination,
            data.due_at,
            tuple(OrderLineData(line.product, line.quantity) for line in data.lines),
            data.priority,
            None,
            "api",
        )
        _status, answer = await edit_order(
            ctx.db,
            order_id,
            order,
            version=data.updated_at,
            actor=_actor(request),
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
        )
        return msgspec.convert(answer, OrderEdited)

    @post(
        "/{order_id:int}/release",
        name="api:orders-release",
        opt=access(SUPERVISORS),
        status_code=200,
        responses=problems(403, 404, 409, 422),
    )
    async def release(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        order_id: FromPath[int],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderMoved:
        """Release a draft: its demand joins the next dispatch run (idempotent)."""
        return await _move(request, ctx, order_id, idempotency_key, release_order)

    @post(
        "/{order_id:int}/hold",
        name="api:orders-hold",
        opt=access(SUPERVISORS),
        status_code=200,
        responses=problems(403, 404, 409, 422),
    )
    async def hold(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        order_id: FromPath[int],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderMoved:
        """Put an order nobody is picking on hold: the stock reserved for it is given back and it is a
        draft again, which dispatch runs skip until it is released (idempotent)."""
        return await _move(request, ctx, order_id, idempotency_key, hold_order)

    @post(
        "/{order_id:int}/cancel",
        name="api:orders-cancel",
        opt=access(SUPERVISORS),
        status_code=200,
        responses=problems(403, 404, 409, 422),
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        order_id: FromPath[int],
        idempotency_key: IdempotencyKey = None,
    ) -> OrderMoved:
        """Cancel an order not yet picked; the stock reserved for it is given back (idempotent)."""
        return await _move(request, ctx, order_id, idempotency_key, cancel_order)
