"""JSON API v1 of the stock record: products, locations, stock on hand and movements.

Bearer token only (see app/web/auth.py). Every error is an RFC 9457 problem (app/web/errors.py).
Request bodies are msgspec structs rather than dataclasses for two reasons: a movement's keys
`from` and `to` are Python keywords, and unknown keys must be refused, not ignored (a misspelt
`gtin` in a PUT would otherwise silently remove every GTIN of the product).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.catalog import LOCATION_KINDS
from app.db.queries.stock import (
    LocationRow,
    ProductRow,
    SiteRef,
    StockRow,
    location_clash,
    locations_of,
    product_by_sku,
    product_page,
    site_by_code,
    stock_rows,
)
from app.domain.access import EVERYONE, SUPERVISORS, Principal
from app.domain.ledger import MovementKind
from app.routes.common import principal_of
from app.services.catalog import LocationData, ProductData, check_location, save_location, save_product
from app.services.errors import N_, Invalid, NotFound, Refused
from app.services.stock import Actor, StockChange, record_stock_change
from app.web.auth import access
from app.web.context import Ctx
from app.web.errors import PROBLEM, on_refused

INT4_MAX = 2_147_483_647  # the database columns are `integer`: a bigger number is malformed, not a 500
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Rows per page (1 to 200).")]
Offset = Annotated[int, QueryParameter(ge=0, le=INT4_MAX, description="Rows to skip.")]
SiteCode = Annotated[
    str | None, QueryParameter(description="A site code, e.g. LYS; default: all your sites.")
]
IdempotencyKey = Annotated[
    str | None,
    # Documented as required; checked by the service, whose 422 problem names it.
    HeaderParameter(
        name="Idempotency-Key",
        required=True,
        description="1 to 128 printable characters, unique per change: a retry with the same key and "
        "body returns the first answer and changes nothing.",
    ),
]
# The kinds record_stock_change accepts (app.services.stock.SIMPLE_KINDS; a test keeps them equal).
MovementKindName = Literal["receipt", "putaway", "transfer", "adjustment", "return"]


class OutsideYourSites(Refused):
    status = 403
    title = "Not your site"


# --- bodies and answers -------------------------------------------------------------------------


class ProductBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A product as a whole (PUT replaces it): omitted fields take their default, omitted GTINs go."""

    name: str
    unit: str = "unit"
    pack_size: int = 1
    lot_tracked: bool = False
    expiry_tracked: bool = False
    round_up_packs: bool = False
    allow_eaches: Annotated[bool, msgspec.Meta(description="Runs may send loose units below a pack.")] = False
    holdback_units: Annotated[
        int, msgspec.Meta(ge=0, le=INT4_MAX, description="Units dispatch runs leave unreserved at each site.")
    ] = 0
    gtins: list[str] = msgspec.field(default_factory=list)
    is_active: bool = True


class LocationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    site: str
    code: str
    kind: Annotated[str, msgspec.Meta(description="One of: " + ", ".join(LOCATION_KINDS))] = "storage"
    zone: str = ""
    pick_seq: Annotated[int, msgspec.Meta(le=INT4_MAX)] = 0
    barcode: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    is_active: bool = True


class MovementBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: MovementKindName
    site: str
    product: Annotated[str, msgspec.Meta(description="A SKU or a GTIN.")]
    quantity: Annotated[int, msgspec.Meta(le=INT4_MAX)]  # the service refuses 0 and below (422)
    source: Annotated[str, msgspec.Meta(description="Location code or barcode.")] | None = msgspec.field(
        default=None, name="from"
    )
    target: Annotated[str, msgspec.Meta(description="Location code or barcode.")] | None = msgspec.field(
        default=None, name="to"
    )
    lot: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    expiry: date | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    document: Annotated[str, msgspec.Meta(max_length=64)] | None = None


@dataclass(frozen=True)
class ProductPage:
    items: list[ProductRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class LocationPage:
    items: list[LocationRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class StockPage:
    items: list[StockRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class BalanceAfter:
    """A balance the movement changed, as it stands after it."""

    product_id: int
    location_id: int
    location: str | None
    lot_id: int | None
    on_hand: int
    reserved: int
    available: int


@dataclass(frozen=True)
class MovementAnswer:
    movements: list[int]
    balances: list[BalanceAfter]


@dataclass(frozen=True)
class Problem:
    """RFC 9457 problem details; the facts of a refusal come as extra members (e.g. `available`)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


_PROBLEMS = {
    400: "Malformed JSON, or fields of the wrong type or out of range: `errors` lists them.",
    401: "No valid bearer token (POST /api/v1/auth/token); the browser session cookie is not accepted.",
    403: "Your role, or the site named (member `site`), is not yours.",
    404: "Unknown product, location or lot (a member names it).",
    409: "The current state refuses it: not enough stock (members `location`, `available`, `requested`), "
    "or a location code or barcode already taken.",
    422: "A value needs correcting (member `field` names it), or an Idempotency-Key reused for another body.",
}


def problem_specs(descriptions: dict[int, str], *statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers of a handler, described for its area, for the OpenAPI schema (401 for all)."""
    return {
        status: ResponseSpec(
            Problem, description=descriptions[status], media_type=PROBLEM, generate_examples=False
        )
        for status in sorted({400, 401, *statuses})
    }


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers of a stock handler."""
    return problem_specs(_PROBLEMS, *statuses)


# --- helpers -----------------------------------------------------------------------------------

# Service field names that the API spells differently.
_API_FIELDS = {"source": "from", "target": "to", "idempotency_key": "Idempotency-Key"}


def on_invalid(request: Request[Any, Any, Any], exc: Invalid) -> Response[Any]:
    """The 422 problem of app.web.errors, plus the `field` to correct, as the API spells it."""
    response = on_refused(request, exc)
    field = getattr(exc, "field", None)
    if field and isinstance(response.content, dict):
        response.content["field"] = _API_FIELDS.get(field, field)
    return response


async def _site(session: AsyncSession, principal: Principal, code: str) -> SiteRef:
    """The site a request names, provided this person works there (admins: every site)."""
    return _your_site(principal, code, await site_by_code(session, code))


def _your_site(principal: Principal, code: str, site: SiteRef | None) -> SiteRef:
    """`site` (the one `code` names; None: no such site), provided this person works there."""
    if site is None:
        raise Invalid("Unknown site: {code}.", field="site", code=code)
    if not principal.may_work_on(site.id):
        raise OutsideYourSites(N_("You do not work at site {site}."), site=site.code)
    return site


async def _sites(session: AsyncSession, principal: Principal, code: str | None) -> Collection[int] | None:
    """The sites a read covers: the one named, or all this person works on (None: every site)."""
    if code is None:
        return principal.site_scope
    return [(await _site(session, principal, code)).id]


class _ApiController(Controller):
    exception_handlers = {Invalid: on_invalid}


# --- controllers -------------------------------------------------------------------------------


class ApiProductsController(_ApiController):
    path = "/api/v1/products"
    tags = ["products"]

    @get("/", name="api:products-list", opt=access(EVERYONE), responses=problems())
    async def list_products(
        self, ctx: Ctx, q: FromQuery[str] = "", limit: Limit = 50, offset: Offset = 0
    ) -> ProductPage:
        """List products by SKU; `q` matches part of the SKU or name, or a whole barcode."""
        async with ctx.db.reads() as session:
            rows, total = await product_page(session, q, limit, offset)
        return ProductPage(rows, total, limit, offset)

    @get("/{sku:path}", name="api:products-show", opt=access(EVERYONE), responses=problems(404))
    async def show_product(self, ctx: Ctx, sku: FromPath[str]) -> ProductRow:
        """One product by SKU, with its GTINs."""
        sku = sku.lstrip("/")  # a SKU may hold a slash, hence the path parameter
        async with ctx.db.reads() as session:
            product = await product_by_sku(session, sku)
        if product is None:
            raise NotFound("Unknown product: {product}.", product=sku)
        return product

    @put(
        "/{sku:path}",
        name="api:products-save",
        opt=access(SUPERVISORS),
        status_code=200,
        responses={201: ResponseSpec(ProductRow, description="Created"), **problems(403, 422)},
    )
    async def put_product(
        self, ctx: Ctx, sku: FromPath[str], data: JSONBody[ProductBody]
    ) -> Response[ProductRow]:
        """Create or replace a product by SKU: 201 when created, 200 when updated or unchanged."""
        product = ProductData(
            sku.lstrip("/"),
            data.name,
            data.unit,
            data.pack_size,
            data.lot_tracked,
            data.expiry_tracked,
            data.round_up_packs,
            tuple(data.gtins),
            data.is_active,
            data.allow_eaches,
            data.holdback_units,
        )
        counts = await save_product(ctx.db, product)
        async with ctx.db.reads() as session:
            saved = await product_by_sku(session, product.sku)
        if saved is None:  # deleted again in between: only possible by hand in the database
            raise NotFound("Unknown product: {product}.", product=product.sku)
        return Response(saved, status_code=201 if counts.created else 200)


class ApiLocationsController(_ApiController):
    path = "/api/v1/locations"
    tags = ["locations"]

    @get("/", name="api:locations-list", opt=access(EVERYONE), responses=problems(403, 422))
    async def list_locations(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: SiteCode = None,
        kind: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> LocationPage:
        """List the locations of your sites (or of one), in pick-path order; `kind` filters by kind."""
        if kind is not None and kind not in LOCATION_KINDS:
            raise Invalid("Unknown location kind: {kind}.", field="kind", kind=kind)
        async with ctx.db.reads() as session:
            site_ids = await _sites(session, principal_of(request), site)
            rows, total = await locations_of(session, site_ids, kind, limit, offset)
        return LocationPage(rows, total, limit, offset)

    @post(
        "/",
        name="api:locations-create",
        opt=access(SUPERVISORS),
        status_code=201,
        responses=problems(403, 409, 422),
    )
    async def create_location(
        self, request: Request[Any, Any, Any], ctx: Ctx, data: JSONBody[LocationBody]
    ) -> LocationRow:
        """Create a location at one of your sites; 409 if its code or its barcode is already taken."""
        async with ctx.db.reads() as session:
            site = await _site(session, principal_of(request), data.site)
            location = check_location(
                LocationData(
                    site.code, data.code, data.kind, data.zone, data.pick_seq, data.barcode, data.is_active
                )
            )
            barcode = location.barcode or ""
            if clash := await location_clash(session, site.id, location.code, barcode):
                raise _taken(site.code, location.code, barcode, clash)
        # The check above and this upsert are two transactions: one created in between is refused too.
        if not (await save_location(ctx.db, location)).created:
            raise _taken(site.code, location.code, barcode)
        return LocationRow(
            site.code,
            location.code,
            barcode,
            location.kind,
            location.zone,
            location.pick_seq,
            location.is_active,
        )


def _taken(site: str, code: str, barcode: str, clash: LocationRow | None = None) -> Refused:
    """The 409 for a location whose code (at its site) or barcode (at any site) is already in use."""
    if clash is None or (clash.site, clash.code) == (site, code):
        return Refused("Location {code} already exists at site {site}.", code=code, site=site)
    return Refused(
        "Barcode {barcode} already belongs to location {code} at site {site}.",
        barcode=barcode,
        code=clash.code,
        site=clash.site,
    )


class ApiStockController(_ApiController):
    path = "/api/v1/stock"
    tags = ["stock"]

    @get("/", name="api:stock-list", opt=access(EVERYONE), responses=problems(403, 422))
    async def list_stock(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: SiteCode = None,
        sku: FromQuery[str | None] = None,
        location: Annotated[str | None, QueryParameter(description="A location code or barcode.")] = None,
        lot: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> StockPage:
        """Stock on hand, reserved and available per site, location, product and lot, in pick-path order."""
        async with ctx.db.reads() as session:
            site_ids = await _sites(session, principal_of(request), site)
            rows, total = await stock_rows(session, site_ids, sku, location, lot, limit, offset)
        return StockPage(rows, total, limit, offset)


class ApiMovementsController(_ApiController):
    path = "/api/v1/movements"
    tags = ["stock"]

    @post(
        "/",
        name="api:movements-create",
        opt=access(EVERYONE),
        status_code=201,
        responses=problems(403, 404, 409, 422),
    )
    async def record_movement(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: JSONBody[MovementBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MovementAnswer]:
        """Record a receipt, put-away, transfer, adjustment or return at one of your sites (idempotent)."""
        principal = principal_of(request)
        change = StockChange(
            MovementKind(data.kind),
            0,  # the site is looked up by its code in the use case's transaction (site_code)
            data.product,
            data.quantity,
            data.source,
            data.target,
            data.lot,
            data.expiry,
            data.reason,
            data.document,
        )
        status, answer = await record_stock_change(
            ctx.db,
            change,
            actor=Actor(user_id=principal.user_id, scope=str(principal.user_id)),
            idempotency_key=idempotency_key or "",
            now=ctx.now(),
            site_code=data.site,
            check_site=lambda site: _your_site(principal, data.site, site),
        )
        balances = [
            BalanceAfter(
                b["product_id"],
                b["location_id"],
                b["location"],
                b["lot_id"],
                b["on_hand"],
                b["reserved"],
                b["available"],
            )
            for b in answer["balances"]
        ]
        return Response(MovementAnswer(list(answer["movements"]), balances), status_code=status)
