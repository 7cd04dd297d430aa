"""Reads behind the stock API: the catalogue, the locations of a site, and the stock on hand.

Each page query returns its rows in a stable order together with the total count, so that
`limit`/`offset` pages neither skip nor repeat a row while nothing changes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Location, Lot, Product, ProductBarcode, Site, StockBalance


@dataclass(frozen=True)
class SiteRef:
    id: int
    code: str


@dataclass(frozen=True)
class ProductRow:
    sku: str
    name: str
    unit: str
    pack_size: int
    lot_tracked: bool
    expiry_tracked: bool
    round_up_packs: bool
    is_active: bool
    gtins: tuple[str, ...]
    allow_eaches: bool
    holdback_units: int


@dataclass(frozen=True)
class LocationRow:
    site: str
    code: str
    barcode: str
    kind: str
    zone: str
    pick_seq: int
    is_active: bool


@dataclass(frozen=True)
class StockRow:
    """What one (site, location, product, lot) holds: on hand, reserved for picking, and the rest."""

    site: str
    location: str
    sku: str
    product_name: str
    lot: str | None
    expiry: date | None
    on_hand: int
    reserved: int
    available: int


async def _count(session: AsyncSession, query: Select[*tuple[Any, ...]]) -> int:
    return int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


async def site_by_code(session: AsyncSession, code: str) -> SiteRef | None:
    row = (await session.execute(select(Site.id, Site.code).where(Site.code == code.strip().upper()))).first()
    return SiteRef(*row) if row else None


_PRODUCT_COLUMNS = (
    Product.id,
    Product.sku,
    Product.name,
    Product.unit,
    Product.pack_size,
    Product.lot_tracked,
    Product.expiry_tracked,
    Product.round_up_packs,
    Product.is_active,
    Product.allow_eaches,
    Product.holdback_units,
)


async def _with_gtins(session: AsyncSession, rows: Sequence[Row[*tuple[Any, ...]]]) -> list[ProductRow]:
    """Attach the GTINs of a page of products with one query (not one per product)."""
    gtins: dict[int, list[str]] = {row.id: [] for row in rows}
    if gtins:
        barcodes = await session.execute(
            select(ProductBarcode.product_id, ProductBarcode.code)
            .where(ProductBarcode.product_id.in_(gtins), ProductBarcode.kind == "gtin")
            .order_by(ProductBarcode.product_id, ProductBarcode.code)
        )
        for product_id, code in barcodes:
            gtins[product_id].append(code)
    return [
        ProductRow(
            row.sku,
            row.name,
            row.unit,
            row.pack_size,
            row.lot_tracked,
            row.expiry_tracked,
            row.round_up_packs,
            row.is_active,
            tuple(gtins[row.id]),
            row.allow_eaches,
            row.holdback_units,
        )
        for row in rows
    ]


async def product_page(
    session: AsyncSession, search: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[ProductRow], int]:
    """Products whose SKU or name contains `search`, or with that exact barcode; by SKU, with the total."""
    query = select(*_PRODUCT_COLUMNS)
    if term := search.strip():
        query = query.where(
            or_(
                Product.sku.icontains(term, autoescape=True),
                Product.name.icontains(term, autoescape=True),
                # A scanned code, stored as GTIN-14: shorter GTINs match once padded.
                Product.id.in_(
                    select(ProductBarcode.product_id).where(ProductBarcode.code.in_({term, term.zfill(14)}))
                ),
            )
        )
    total = await _count(session, query)
    rows = (await session.execute(query.order_by(Product.sku).limit(limit).offset(offset))).all()
    return await _with_gtins(session, rows), total


async def product_by_sku(session: AsyncSession, sku: str) -> ProductRow | None:
    """One product by its SKU, with its GTINs."""
    row = (await session.execute(select(*_PRODUCT_COLUMNS).where(Product.sku == sku.strip()))).first()
    return (await _with_gtins(session, [row]))[0] if row else None


_LOCATION_COLUMNS = (
    Site.code,
    Location.code,
    Location.barcode,
    Location.kind,
    Location.zone,
    Location.pick_seq,
    Location.is_active,
)


async def locations_of(
    session: AsyncSession,
    site_ids: Collection[int] | None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LocationRow], int]:
    """Locations of `site_ids` (None: every site), in pick-path order per site, with the total."""
    query = select(*_LOCATION_COLUMNS).join(Site, Site.id == Location.site_id)
    if site_ids is not None:
        query = query.where(Location.site_id.in_(site_ids))
    if kind:
        query = query.where(Location.kind == kind)
    total = await _count(session, query)
    rows = await session.execute(
        query.order_by(Site.code, Location.pick_seq, Location.code).limit(limit).offset(offset)
    )
    return [LocationRow(*row) for row in rows], total


async def location_clash(session: AsyncSession, site_id: int, code: str, barcode: str) -> LocationRow | None:
    """The location that already holds this code at the site, or this barcode at any site."""
    row = (
        await session.execute(
            select(*_LOCATION_COLUMNS)
            .join(Site, Site.id == Location.site_id)
            .where(or_((Location.site_id == site_id) & (Location.code == code), Location.barcode == barcode))
            .order_by(Location.site_id != site_id, Location.id)
            .limit(1)
        )
    ).first()
    return LocationRow(*row) if row else None


async def stock_rows(
    session: AsyncSession,
    site_ids: Collection[int] | None,
    sku: str | None = None,
    location: str | None = None,
    lot: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[StockRow], int]:
    """Stock on hand per (site, location, product, lot), in pick-path order, with the total.

    Emptied balances (nothing on hand, so nothing reserved) are left out. `location` matches a
    location's code or its barcode.
    """
    query = (
        select(
            Site.code,
            Location.code,
            Product.sku,
            Product.name,
            Lot.code,
            Lot.expiry,
            StockBalance.on_hand,
            StockBalance.reserved,
            (StockBalance.on_hand - StockBalance.reserved).label("available"),
        )
        .join(Location, Location.id == StockBalance.location_id)
        .join(Site, Site.id == Location.site_id)
        .join(Product, Product.id == StockBalance.product_id)
        .outerjoin(Lot, Lot.id == StockBalance.lot_id)
        .where(StockBalance.on_hand > 0)
    )
    if site_ids is not None:
        query = query.where(Location.site_id.in_(site_ids))
    if sku:
        query = query.where(Product.sku == sku.strip())
    if location:
        code = location.strip()
        query = query.where(or_(Location.code.in_({code, code.upper()}), Location.barcode == code))
    if lot:
        query = query.where(Lot.code == lot.strip())
    total = await _count(session, query)
    rows = await session.execute(
        query.order_by(Site.code, Location.pick_seq, Location.code, Product.sku, Lot.code.nulls_first())
        .limit(limit)
        .offset(offset)
    )
    return [StockRow(*row) for row in rows], total
