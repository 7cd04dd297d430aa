"""JSON API v1 of picking and shipment: pick lists with their tasks, task confirmations, shipments.

Same rules as the stock API (app/routes/api_stock.py): bearer token, RFC 9457 problems, msgspec bodies
that refuse unknown fields, an `Idempotency-Key` on every POST, and only the caller's sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.queries.picking import EPOCH, PickListRow, TaskRow, list_tasks, pick_lists
from app.domain.access import EVERYONE, Principal
from app.domain.picking import walking_order
from app.routes.api_stock import (
    INT4_MAX,
    IdempotencyKey,
    Limit,
    Offset,
    SiteCode,
    _ApiController,
    _site,
    _sites,
    problems,
)
from app.routes.common import principal_of
from app.services.picking import PickConfirmation, confirm_pick
from app.services.shipments import ShipmentRequest, close_shipment
from app.services.stock import Actor
from app.web.auth import access
from app.web.context import Ctx

ListStatus = Literal["open", "taken", "done", "cancelled"]


class ConfirmBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the picker scanned and counted. A quantity below the task's records a short pick."""

    location: Annotated[str, msgspec.Meta(max_length=64, description="The location's code or barcode.")]
    product: Annotated[
        str, msgspec.Meta(max_length=200, description="SKU, GTIN or GS1 element string (its lot is used).")
    ] = ""
    lot: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    quantity: Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX, description="Units found; 0: none there.")]


class ShipmentBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    site: str
    destination: Annotated[str, msgspec.Meta(description="The destination's code.")]
    parcels: Annotated[int, msgspec.Meta(ge=1, le=999)] = 1


@dataclass(frozen=True)
class TaskOut:
    id: int
    status: str
    location: str
    sku: str
    product: str
    lot: str | None
    expiry: date | None
    quantity: int
    picked: int
    short: int
    order: str
    destination: str


@dataclass(frozen=True)
class PickListOut:
    id: int
    number: str
    site: str
    zone: str
    status: str
    taken_by: str | None  # full name
    taken_at: datetime | None
    done_at: datetime | None
    units: int
    tasks: list[TaskOut]  # in walking order


@dataclass(frozen=True)
class PickListPage:
    items: list[PickListOut]
    limit: int
    offset: int


@dataclass(frozen=True)
class ConfirmAnswer:
    task: int
    pick_list: int
    status: str  # picked or short
    picked: int
    short: int
    list_status: str
    order: int
    order_state: str
    movements: list[int]


@dataclass(frozen=True)
class ShipmentAnswer:
    shipment: int
    number: str
    destination: str
    parcels: int
    units: int
    lines: int
    movements: list[int]
    dispatched: list[str]  # order numbers
    backorders: list[str]  # numbers of the backorders created


def _task(row: TaskRow) -> TaskOut:
    return TaskOut(
        row.task_id,
        row.status,
        row.location,
        row.sku,
        row.product,
        row.lot,
        row.expiry,
        row.quantity,
        row.picked,
        row.short,
        row.order,
        row.destination,
    )


async def _lists_out(session: AsyncSession, rows: list[PickListRow]) -> list[PickListOut]:
    tasks = await list_tasks(session, [row.id for row in rows])
    by_list: dict[int, list[TaskRow]] = {}
    for task in tasks:
        by_list.setdefault(task.pick_list_id, []).append(task)
    return [
        PickListOut(
            row.id,
            row.number,
            row.site,
            row.zone,
            row.status,
            row.taken_by_name,
            row.taken_at,
            row.done_at,
            row.units,
            [_task(t) for t in walking_order(by_list.get(row.id, []))],
        )
        for row in rows
    ]


def _actor(principal: Principal) -> Actor:
    return Actor(user_id=principal.user_id, scope=str(principal.user_id))


class ApiPickListsController(_ApiController):
    path = "/api/v1/pick-lists"
    tags = ["picking"]

    @get("/", name="api:pick-lists", opt=access(EVERYONE), responses=problems(403, 422))
    async def list_pick_lists(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: SiteCode = None,
        status: Annotated[ListStatus | None, QueryParameter(description="open, taken or done.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PickListPage:
        """Pick lists of your sites (or of one), each with its tasks in walking order; `status` filters."""
        async with ctx.db.reads() as session:
            site_ids = await _sites(session, principal_of(request), site)
            rows = await pick_lists(
                session, site_ids, status=status, done_since=EPOCH, limit=limit, offset=offset
            )
            return PickListPage(await _lists_out(session, rows), limit, offset)


class ApiPickTasksController(_ApiController):
    path = "/api/v1/pick-tasks"
    tags = ["picking"]

    @post(
        "/{task_id:int}/confirm",
        name="api:pick-tasks-confirm",
        opt=access(EVERYONE),
        status_code=201,
        responses=problems(403, 404, 409, 422),
    )
    async def confirm_task(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        task_id: FromPath[int],
        data: JSONBody[ConfirmBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ConfirmAnswer]:
        """Confirm a task: found units go to the dispatch dock, the rest is a short pick (idempotent).

        Wrong scans are refused with 422 and a `problem` member: wrong_location, wrong_product,
        lot_missing, wrong_lot, expired_lot or too_many. An open list is taken by its first confirmation;
        a list someone else is picking is refused (409, member `name`).
        """
        principal = principal_of(request)
        status, answer = await confirm_pick(
            ctx.db,
            task_id,
            PickConfirmation(data.location, data.product, data.lot, data.quantity),
            site_ids=principal.site_scope,
            actor=_actor(principal),
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
        )
        return Response(ConfirmAnswer(**answer), status_code=status)


class ApiShipmentsController(_ApiController):
    path = "/api/v1/shipments"
    tags = ["shipments"]

    @post(
        "/",
        name="api:shipments-create",
        opt=access(EVERYONE),
        status_code=201,
        responses=problems(403, 404, 409, 422),
    )
    async def create_shipment(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: JSONBody[ShipmentBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ShipmentAnswer]:
        """Close the shipment of one destination at one of your sites: everything picked for it leaves.

        Orders with nothing reserved any more are dispatched; what they still owe becomes a backorder.
        """
        principal = principal_of(request)
        async with ctx.db.reads() as session:
            site = await _site(session, principal, data.site)
        status, answer = await close_shipment(
            ctx.db,
            ShipmentRequest(site.id, data.destination, data.parcels),
            actor=_actor(principal),
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
        )
        return Response(ShipmentAnswer(**answer), status_code=status)
