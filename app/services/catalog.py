"""The catalogue: products with their barcodes, and the locations of each site.

Writes are upserts keyed by the natural key (SKU; site and location code), so that importing the
same file twice, or PUTting the same product twice, changes nothing the second time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Location, Product, ProductBarcode, Site
from app.db.models.catalog import LOCATION_KINDS
from app.db.session import Database
from app.domain.scan import validate_gtin
from app.services.errors import Invalid

SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$")
LOCATION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$")
MAX_HOLDBACK = 1_000_000  # units: far above any safety stock, far below the integer column


@dataclass(frozen=True)
class ProductData:
    sku: str
    name: str
    unit: str = "unit"
    pack_size: int = 1
    lot_tracked: bool = False
    expiry_tracked: bool = False
    round_up_packs: bool = False
    gtins: tuple[str, ...] = field(default=())
    is_active: bool = True
    allow_eaches: bool = False  # a run may send loose units below a pack
    holdback_units: int = 0  # units dispatch runs leave unreserved at each site


@dataclass(frozen=True)
class LocationData:
    site_code: str
    code: str
    kind: str = "storage"
    zone: str = ""
    pick_seq: int = 0
    barcode: str | None = None  # defaults to LOC-<site>-<code>
    is_active: bool = True


@dataclass(frozen=True)
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


_PRODUCT_COLUMNS = (
    "name",
    "unit",
    "pack_size",
    "lot_tracked",
    "expiry_tracked",
    "round_up_packs",
    "allow_eaches",
    "holdback_units",
    "is_active",
)
_LOCATION_COLUMNS = ("barcode", "kind", "zone", "pick_seq", "is_active")


def _changed(table: str, columns: Sequence[str]) -> Any:
    """ON CONFLICT … WHERE: update only when some column really differs."""
    current = ", ".join(f"{table}.{c}" for c in columns)
    proposed = ", ".join(f"excluded.{c}" for c in columns)
    return text(f"({current}) IS DISTINCT FROM ({proposed})")


def check_product(data: ProductData) -> ProductData:
    """Normalise and validate one product; raise Invalid naming the field."""
    sku, name = data.sku.strip(), " ".join(data.name.split())
    if not SKU.match(sku):
        raise Invalid("A SKU has 1 to 32 letters, digits or . _ / - characters.", field="sku", sku=sku)
    if not name or len(name) > 200:
        raise Invalid("Enter the product name (200 characters at most).", field="name")
    if not 1 <= data.pack_size <= 100_000:
        raise Invalid("The pack size must be a whole number from 1 to 100000.", field="pack_size")
    if not 0 <= data.holdback_units <= MAX_HOLDBACK:
        raise Invalid(
            "The units kept back are a whole number from 0 to {max}.",
            field="holdback_units",
            max=MAX_HOLDBACK,
        )
    if data.expiry_tracked and not data.lot_tracked:
        raise Invalid("A product tracked by expiry date must also be tracked by lot.", field="expiry_tracked")
    gtins = tuple(dict.fromkeys(code.strip().zfill(14) for code in data.gtins if code.strip()))
    for code in gtins:
        if not code.isdigit() or len(code) != 14 or not validate_gtin(code):
            raise Invalid("{gtin} is not a valid GTIN (check digit).", field="gtins", gtin=code.lstrip("0"))
    unit = data.unit.strip() or "unit"
    return ProductData(
        sku,
        name,
        unit[:16],
        data.pack_size,
        data.lot_tracked,
        data.expiry_tracked,
        data.round_up_packs,
        gtins,
        data.is_active,
        data.allow_eaches,
        data.holdback_units,
    )


def check_location(data: LocationData) -> LocationData:
    code = data.code.strip().upper()
    if not LOCATION_CODE.match(code):
        raise Invalid("A location code has 1 to 32 letters, digits or . _ / - characters.", field="code")
    if data.kind not in LOCATION_KINDS:
        raise Invalid("Unknown location kind: {kind}.", field="kind", kind=data.kind)
    if data.pick_seq < 0:
        raise Invalid("The pick-path sequence cannot be negative.", field="pick_seq")
    site = data.site_code.strip().upper()
    barcode = (data.barcode or "").strip() or f"LOC-{site}-{code}"
    zone = (data.zone.strip() or code.split("-")[0])[:16]
    return LocationData(site, code, data.kind, zone, data.pick_seq, barcode, data.is_active)


async def upsert_products(session: AsyncSession, products: Sequence[ProductData]) -> UpsertCounts:
    """Create or update products by SKU (in the caller's transaction); barcodes follow the given list."""
    if not products:
        return UpsertCounts()
    rows = [
        {
            "sku": p.sku,
            "name": p.name,
            "unit": p.unit,
            "pack_size": p.pack_size,
            "lot_tracked": p.lot_tracked,
            "expiry_tracked": p.expiry_tracked,
            "round_up_packs": p.round_up_packs,
            "allow_eaches": p.allow_eaches,
            "holdback_units": p.holdback_units,
            "is_active": p.is_active,
        }
        for p in products
    ]
    proposed = insert(Product)
    statement = proposed.on_conflict_do_update(
        index_elements=[Product.sku],
        set_={column: getattr(proposed.excluded, column) for column in _PRODUCT_COLUMNS},
        # Only real changes are written, so a re-import reports them as unchanged and bumps nothing.
        where=_changed("products", _PRODUCT_COLUMNS),
    ).returning(Product.sku, Product.id, text("(xmax = 0) AS inserted"))
    written = {sku: (pid, inserted) for sku, pid, inserted in (await session.execute(statement, rows)).all()}
    ids = dict(
        (
            await session.execute(
                select(Product.sku, Product.id).where(Product.sku.in_([p.sku for p in products]))
            )
        ).all()
    )
    barcode_changes = await _sync_barcodes(session, products, ids)
    created_skus = {sku for sku, (_pid, inserted) in written.items() if inserted}
    changed_skus = {sku for sku, (_pid, inserted) in written.items() if not inserted} | barcode_changes
    created, updated = len(created_skus), len(changed_skus - created_skus)
    return UpsertCounts(created, updated, len(products) - created - updated)


async def _sync_barcodes(
    session: AsyncSession, products: Sequence[ProductData], ids: dict[str, int]
) -> set[str]:
    """Make each product's GTINs exactly the given ones; return the SKUs whose barcodes changed."""
    wanted = {(ids[p.sku], code) for p in products for code in p.gtins}
    existing = set(
        (
            await session.execute(
                select(ProductBarcode.product_id, ProductBarcode.code).where(
                    ProductBarcode.product_id.in_(ids.values()), ProductBarcode.kind == "gtin"
                )
            )
        ).all()
    )
    by_id = {pid: sku for sku, pid in ids.items()}
    if stale := existing - wanted:
        for product_id, code in stale:
            await session.execute(
                delete(ProductBarcode).where(
                    ProductBarcode.product_id == product_id, ProductBarcode.code == code
                )
            )
    if fresh := wanted - existing:
        owners = await session.execute(
            select(ProductBarcode.code, ProductBarcode.product_id, Product.sku)
            .join(Product, Product.id == ProductBarcode.product_id)
            .where(ProductBarcode.code.in_([code for _pid, code in fresh]))
        )
        taken = {code: (owner_id, sku) for code, owner_id, sku in owners}
        for product_id, code in sorted(fresh):
            if code in taken and taken[code][0] != product_id:
                raise Invalid(
                    "GTIN {gtin} already belongs to {sku}.", field="gtins", gtin=code, sku=taken[code][1]
                )
        await session.execute(
            insert(ProductBarcode),
            [
                {"product_id": product_id, "code": code, "kind": "gtin", "units": 1}
                for product_id, code in sorted(fresh)
            ],
        )
    return {by_id[pid] for pid, _code in stale | fresh}


async def upsert_locations(session: AsyncSession, locations: Sequence[LocationData]) -> UpsertCounts:
    """Create or update locations by (site, code), in the caller's transaction."""
    if not locations:
        return UpsertCounts()
    sites = dict((await session.execute(select(Site.code, Site.id))).all())
    missing = sorted({loc.site_code for loc in locations} - set(sites))
    if missing:
        raise Invalid("Unknown site: {code}.", field="site", code=", ".join(missing))
    await _refuse_barcode_clashes(session, locations, sites)
    rows = [
        {
            "site_id": sites[loc.site_code],
            "code": loc.code,
            "barcode": loc.barcode,
            "kind": loc.kind,
            "zone": loc.zone,
            "pick_seq": loc.pick_seq,
            "is_active": loc.is_active,
        }
        for loc in locations
    ]
    proposed = insert(Location)
    statement = proposed.on_conflict_do_update(
        index_elements=[Location.site_id, Location.code],
        set_={column: getattr(proposed.excluded, column) for column in _LOCATION_COLUMNS},
        where=_changed("locations", _LOCATION_COLUMNS),
    ).returning(text("(xmax = 0) AS inserted"))
    written = [inserted for (inserted,) in (await session.execute(statement, rows)).all()]
    created = sum(1 for inserted in written if inserted)
    updated = len(written) - created
    return UpsertCounts(created, updated, len(locations) - created - updated)


async def _refuse_barcode_clashes(
    session: AsyncSession, locations: Sequence[LocationData], sites: dict[str, int]
) -> None:
    """A location barcode is scanned to find one location: it may belong to no other."""
    owners = await session.execute(
        select(Location.barcode, Location.site_id, Location.code).where(
            Location.barcode.in_([loc.barcode for loc in locations])
        )
    )
    holder = {barcode: (site_id, code) for barcode, site_id, code in owners}
    site_codes = {site_id: code for code, site_id in sites.items()}
    for loc in locations:
        owner = holder.get(loc.barcode or "")
        if owner is not None and owner != (sites[loc.site_code], loc.code):
            raise Invalid(
                "Barcode {barcode} already belongs to location {code} at site {site}.",
                field="barcode",
                barcode=loc.barcode,
                code=owner[1],
                site=site_codes.get(owner[0], "?"),
            )


async def save_product(db: Database, data: ProductData) -> UpsertCounts:
    """Create or update one product (API PUT)."""
    product = check_product(data)
    async with db.transaction() as session:
        return await upsert_products(session, [product])


async def save_location(db: Database, data: LocationData) -> UpsertCounts:
    location = check_location(data)
    async with db.transaction() as session:
        return await upsert_locations(session, [location])
