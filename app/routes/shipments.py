"""Shipment screens: what waits at the dock per destination, closing a shipment, delivery note, labels."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.db.queries.shipments import (
    ReadyRow,
    ShipmentDetail,
    ShipmentRow,
    ready_to_ship,
    recent_shipments,
    shipment_detail,
)
from app.db.queries.users import SiteRow
from app.domain.access import EVERYONE
from app.domain.shipping import ParcelLabel, zpl_labels
from app.routes.common import principal_of, site_for, to_first_site
from app.routes.pick_flow import new_key
from app.routes.scan_flows.flows import Form, one
from app.services.errors import Invalid, NotFound, Refused
from app.services.labels import print_labels
from app.services.shipments import ShipmentRequest, close_shipment
from app.services.stock import Actor
from app.settings import label_printer_address
from app.web.auth import access
from app.web.barcodes import code128_svg
from app.web.context import AppContext, Ctx
from app.web.i18n import gettext as _
from app.web.templating import page


@dataclass(frozen=True)
class ShipmentsView:
    site: SiteRow
    ready: list[ReadyRow]
    recent: list[ShipmentRow]
    key: str
    problem: str | None = None
    problem_destination: str | None = None


@dataclass(frozen=True)
class ShipmentView:
    site: SiteRow
    detail: ShipmentDetail
    printer: str | None  # host:port of the label printer, None when labels are only downloaded
    key: str
    notice: str | None = None
    problem: str | None = None
    printed_at: datetime | None = None

    @property
    def barcode(self) -> Any:
        return code128_svg(self.detail.shipment.number)


class ShipmentsController(Controller):
    opt = access(EVERYONE)

    @get("/shipments", name="shipments:home")
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        """The shipments of the person's first site (the nav link lands here)."""
        return await to_first_site(request, ctx, "shipments:index")

    @get("/sites/{site:str}/shipments", name="shipments:index")
    async def index(self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str]) -> Template:
        """Destinations with picked stock at the dock, and the latest shipments."""
        return await _index(request, ctx, await site_for(ctx, principal_of(request), site))

    @post("/sites/{site:str}/shipments", name="shipments:close", status_code=303)
    async def close(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], data: Form
    ) -> Response[Any]:
        """Close the shipment of one destination: everything picked for it leaves, in `parcels` parcels."""
        principal = principal_of(request)
        found = await site_for(ctx, principal, site)
        destination = one(data, "destination").strip()
        try:
            parcels = _parcels(one(data, "parcels"))
            _status, answer = await close_shipment(
                ctx.db,
                ShipmentRequest(found.id, destination, parcels),
                actor=Actor(user_id=principal.user_id, scope=str(principal.user_id)),
                idempotency_key=one(data, "idempotency_key"),
                now=ctx.now(),
            )
        except Refused as refusal:
            return await _index(request, ctx, found, refusal, destination)
        target = request.app.route_reverse("shipments:show", site=found.code, shipment_id=answer["shipment"])
        return Redirect(target, status_code=303)

    @get("/sites/{site:str}/shipments/{shipment_id:int}", name="shipments:show")
    async def show(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], shipment_id: FromPath[int]
    ) -> Template:
        view = await _shipment(ctx, await site_for(ctx, principal_of(request), site), shipment_id)
        return page(request, "shipments/detail.html", "labels", view=view)

    @get("/sites/{site:str}/shipments/{shipment_id:int}/note", name="shipments:note")
    async def note(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], shipment_id: FromPath[int]
    ) -> Template:
        """The delivery note, for printing: destination and address, lines with their lots, parcels."""
        view = await _shipment(ctx, await site_for(ctx, principal_of(request), site), shipment_id)
        return Template("shipments/note.html", context={"view": view})

    @get("/sites/{site:str}/shipments/{shipment_id:int}/labels.zpl", name="shipments:labels")
    async def labels(
        self, request: Request[Any, Any, Any], ctx: Ctx, site: FromPath[str], shipment_id: FromPath[int]
    ) -> Response[bytes]:
        """One ZPL label per parcel, to download and send to any Zebra printer."""
        view = await _shipment(ctx, await site_for(ctx, principal_of(request), site), shipment_id)
        number = view.detail.shipment.number
        return Response(
            _zpl(view.detail).encode(),
            media_type="application/zpl",
            headers={"Content-Disposition": f'attachment; filename="{number}.zpl"'},
        )

    @post(
        "/sites/{site:str}/shipments/{shipment_id:int}/labels", name="shipments:print-labels", status_code=200
    )
    async def print_labels(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        shipment_id: FromPath[int],
        data: Form,
    ) -> Template:
        """Send the labels to the network label printer (setting LABEL_PRINTER)."""
        principal = principal_of(request)
        view = await _shipment(ctx, await site_for(ctx, principal, site), shipment_id)
        number = view.detail.shipment.number
        try:
            await print_labels(
                ctx.db,
                label_printer_address(ctx.settings),
                _zpl(view.detail),
                document=number,
                scope=str(principal.user_id),
                idempotency_key=one(data, "idempotency_key"),
                now=ctx.now(),
            )
        except Refused as refusal:
            view = _with(view, problem=_(refusal.message, **refusal.facts))
            return page(request, "shipments/detail.html", "labels", status_code=refusal.status, view=view)
        parcels = view.detail.shipment.parcels
        view = _with(
            view, notice=_("{num} labels sent to the printer {printer}.", num=parcels, printer=view.printer)
        )
        return page(request, "shipments/detail.html", "labels", view=view)


def _parcels(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdecimal()):
        raise Invalid("The number of parcels must be from 1 to {max}.", field="parcels", max=999)
    return int(text)


def _zpl(detail: ShipmentDetail) -> str:
    shipment = detail.shipment
    labels = [
        ParcelLabel(
            shipment.number,
            f"{detail.site_name} ({detail.site_code})",
            shipment.destination,
            shipment.destination_name,
            _("Parcel {n}/{total}", n=n, total=shipment.parcels),
        )
        for n in range(1, shipment.parcels + 1)
    ]
    return zpl_labels(labels)


def _with(view: ShipmentView, **changes: Any) -> ShipmentView:
    return replace(view, key=new_key(), **changes)


async def _shipment(ctx: AppContext, site: SiteRow, shipment_id: int) -> ShipmentView:
    async with ctx.db.reads() as session:
        detail = await shipment_detail(session, site.id, shipment_id)
    if detail is None:
        raise NotFound("Unknown shipment: {number}.", number=shipment_id)
    address = label_printer_address(ctx.settings)
    printer = f"{address[0]}:{address[1]}" if address else None
    return ShipmentView(site, detail, printer, new_key(), printed_at=ctx.now())


async def _index(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    site: SiteRow,
    refusal: Refused | None = None,
    destination: str | None = None,
) -> Template:
    async with ctx.db.reads() as session:
        ready = await ready_to_ship(session, site.id)
        recent = await recent_shipments(session, site.id)
    problem = _(refusal.message, **refusal.facts) if refusal else None
    view = ShipmentsView(site, ready, recent, new_key(), problem, destination if refusal else None)
    return page(
        request, "shipments/index.html", "ready", status_code=refusal.status if refusal else 200, view=view
    )
