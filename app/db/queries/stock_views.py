"""Reads behind the stock pages: a product, a location, and the movement history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.models import (
    Location,
    Lot,
    Product,
    ProductBarcode,
    Site,
    StockBalance,
    StockMovement,
    User,
)

DEFAULT_ZONE = "Europe/Paris"
# A movement's two ends. Made once: an alias of a mapped class builds a proxy of every column (about 1 ms
# per alias on the VM), which per call was most of what building these queries cost.
SOURCE, TARGET = aliased(Location, name="source"), aliased(Location, name="target")


@dataclass(frozen=True)
class Barcode:
    code: str
    kind: str  # gtin, internal
    units: int  # 1 for the unit, the pack size for a case GTIN


@dataclass(frozen=True)
class BalanceRow:
    """Stock of one product, in one lot, at one location."""

    location_id: int
    location_code: str
    location_kind: str
    pick_seq: int
    product_id: int
    sku: str
    product_name: str
    lot_code: str | None
    expiry: date | None
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def expired(self, today: date) -> bool:
        return self.expiry is not None and self.expiry < today


@dataclass(frozen=True)
class Totals:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @classmethod
    def of(cls, balances: tuple[BalanceRow, ...]) -> Totals:
        return cls(sum(b.on_hand for b in balances), sum(b.reserved for b in balances))


@dataclass(frozen=True)
class ProductDetail:
    id: int
    sku: str
    name: str
    unit: str
    pack_size: int
    lot_tracked: bool
    expiry_tracked: bool
    is_active: bool
    barcodes: tuple[Barcode, ...]
    balances: tuple[BalanceRow, ...]  # at the site, in pick-path order
    round_up_packs: bool  # what dispatch runs may do with it
    allow_eaches: bool
    holdback_units: int

    @property
    def totals(self) -> Totals:
        return Totals.of(self.balances)


@dataclass(frozen=True)
class LocationDetail:
    id: int
    code: str
    barcode: str
    kind: str
    zone: str
    pick_seq: int
    is_active: bool
    balances: tuple[BalanceRow, ...]  # by SKU, then earliest expiry

    @property
    def totals(self) -> Totals:
        return Totals.of(self.balances)


def _balances() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Location.id,
            Location.code,
            Location.kind,
            Location.pick_seq,
            Product.id,
            Product.sku,
            Product.name,
            Lot.code,
            Lot.expiry,
            StockBalance.on_hand,
            StockBalance.reserved,
        )
        .join(Location, Location.id == StockBalance.location_id)
        .join(Product, Product.id == StockBalance.product_id)
        .outerjoin(Lot, Lot.id == StockBalance.lot_id)
        .where(StockBalance.on_hand > 0)
    )


async def product_detail(session: AsyncSession, site_id: int, sku: str) -> ProductDetail | None:
    """A product with its barcodes and its stock at the site per location and lot, in pick-path order."""
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        return None
    barcodes = await session.execute(
        select(ProductBarcode.code, ProductBarcode.kind, ProductBarcode.units)
        .where(ProductBarcode.product_id == product.id)
        .order_by(ProductBarcode.units, ProductBarcode.code)
    )
    balances = await session.execute(
        _balances()
        .where(StockBalance.product_id == product.id, Location.site_id == site_id)
        .order_by(Location.pick_seq, Location.code, Lot.expiry.asc().nulls_last(), Lot.code)
    )
    return ProductDetail(
        product.id,
        product.sku,
        product.name,
        product.unit,
        product.pack_size,
        product.lot_tracked,
        product.expiry_tracked,
        product.is_active,
        tuple(Barcode(*b) for b in barcodes),
        tuple(BalanceRow(*b) for b in balances),
        product.round_up_packs,
        product.allow_eaches,
        product.holdback_units,
    )


async def location_detail(session: AsyncSession, site_id: int, code: str) -> LocationDetail | None:
    """A location of the site (by code or barcode) with what it holds, by SKU then earliest expiry."""
    code = code.strip()
    location = await session.scalar(
        select(Location)
        .where(Location.site_id == site_id, Location.code.in_({code, code.upper()}))
        .order_by((Location.code == code).desc())  # the exact spelling first
        .limit(1)
    )
    if location is None:
        return None
    balances = await session.execute(
        _balances()
        .where(StockBalance.location_id == location.id)
        .order_by(Product.sku, Lot.expiry.asc().nulls_last(), Lot.code)
    )
    return LocationDetail(
        location.id,
        location.code,
        location.barcode,
        location.kind,
        location.zone,
        location.pick_seq,
        location.is_active,
        tuple(BalanceRow(*b) for b in balances),
    )


async def site_zone(session: AsyncSession, site_id: int) -> ZoneInfo:
    """The time zone a site reads its clocks in (Paris if the stored name is unknown)."""
    name = await session.scalar(select(Site.timezone).where(Site.id == site_id))
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


async def export_subject(
    session: AsyncSession, site_id: int, sku: str | None, location_code: str | None
) -> tuple[int | None, int | None] | None:
    """The ids behind an export's product and location filters; None if one names nothing at the site."""
    product_id = location_id = None
    if sku:
        product_id = await session.scalar(select(Product.id).where(Product.sku == sku))
        if product_id is None:
            return None
    if location_code:
        location_id = await session.scalar(
            select(Location.id).where(Location.site_id == site_id, Location.code == location_code)
        )
        if location_id is None:
            return None
    return product_id, location_id


# ---------------------------------------------------------------- movement history


@dataclass(frozen=True)
class HistoryFilter:
    product_id: int | None = None
    location_id: int | None = None
    kind: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class MovementRow:
    id: int
    occurred_at: datetime
    kind: str
    sku: str
    product_name: str
    lot_code: str | None
    expiry: date | None
    from_code: str | None
    to_code: str | None
    quantity: int
    delta: int | None  # signed change for the location (or the site); None for a move inside the site
    reason: str | None
    document: str | None
    actor: str | None


@dataclass(frozen=True)
class HistoryPage:
    rows: list[MovementRow]
    more: bool  # an older page exists


def _history(site_id: int, wanted: HistoryFilter, limit: int | None, offset: int) -> Select[*tuple[Any, ...]]:
    """Movements touching the site's locations, newest first, as (movement columns…) rows."""
    m = StockMovement
    where: list[ColumnElement[bool]] = []
    if wanted.product_id is not None:
        where.append(m.product_id == wanted.product_id)
    if wanted.kind:
        where.append(m.kind == wanted.kind)
    if wanted.since is not None:
        where.append(m.occurred_at >= wanted.since)
    if wanted.until is not None:
        where.append(m.occurred_at < wanted.until)
    newest_first = (m.occurred_at.desc(), m.id.desc())
    if wanted.location_id is not None:
        # Out of, and into, the location: each side reads its own (location, time) index backwards and
        # stops after the rows this page can need, instead of an OR that would read and sort every
        # movement of a busy dock to show the latest fifty.
        sides = [
            select(m.id, m.occurred_at).where(side == wanted.location_id, *where)
            for side in (m.from_location_id, m.to_location_id)
        ]
        if limit is not None:
            sides = [side.order_by(*newest_first).limit(limit + offset) for side in sides]
        ids = union_all(*(side.subquery().select() for side in sides)).subquery("touching")
    else:
        site_locations = select(Location.id).where(Location.site_id == site_id)
        ids = (
            select(m.id, m.occurred_at)
            .where(
                or_(m.from_location_id.in_(site_locations), m.to_location_id.in_(site_locations)),
                *where,
            )
            .subquery("touching")
        )
    page = select(ids.c.id, ids.c.occurred_at).order_by(ids.c.occurred_at.desc(), ids.c.id.desc())
    if limit is not None:
        page = page.limit(limit).offset(offset)
    chosen = page.subquery("chosen")
    if wanted.location_id is not None:
        delta = case((m.to_location_id == wanted.location_id, m.quantity), else_=-m.quantity)
    else:
        delta = case(
            (m.from_location_id.is_(None), m.quantity),
            (m.to_location_id.is_(None), -m.quantity),
            else_=None,
        )
    return (
        select(
            m.id,
            m.occurred_at,
            m.kind,
            Product.sku,
            Product.name,
            Lot.code,
            Lot.expiry,
            SOURCE.code,
            TARGET.code,
            m.quantity,
            delta,
            m.reason,
            m.document,
            User.username,
        )
        .select_from(chosen)
        .join(m, m.id == chosen.c.id)
        .join(Product, Product.id == m.product_id)
        .outerjoin(Lot, Lot.id == m.lot_id)
        .outerjoin(SOURCE, SOURCE.id == m.from_location_id)
        .outerjoin(TARGET, TARGET.id == m.to_location_id)
        .outerjoin(User, User.id == m.actor_id)
        .order_by(chosen.c.occurred_at.desc(), chosen.c.id.desc())
    )


async def movement_history(
    session: AsyncSession,
    site_id: int,
    product_id: int | None = None,
    location_id: int | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> HistoryPage:
    """One page of the movements touching the site's locations, newest first."""
    wanted = HistoryFilter(product_id, location_id, kind, since, until)
    rows = (await session.execute(_history(site_id, wanted, limit + 1, offset))).all()
    return HistoryPage([MovementRow(*r) for r in rows[:limit]], more=len(rows) > limit)


async def stream_movement_history(
    session: AsyncSession, site_id: int, wanted: HistoryFilter, batch: int = 1000
) -> AsyncIterator[MovementRow]:
    """Every movement `movement_history` would page through, read from a server-side cursor."""
    result = await session.stream(_history(site_id, wanted, None, 0).execution_options(yield_per=batch))
    async for row in result:
        yield MovementRow(*row)
