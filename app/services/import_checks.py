"""What an import's rows need from the database, checked in bulk: a few queries per file, not per row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Location, Lot, Product, ProductBarcode, Site
from app.services.catalog import LocationData, ProductData
from app.services.errors import N_
from app.services.import_rows import Problem, Record, StockRow
from app.services.stock import OpeningLine

T = TypeVar("T")
# PostgreSQL takes at most 32,767 parameters per statement: long IN lists go in slices.
IN_SLICE = 10_000


def slices(items: Sequence[T], size: int = IN_SLICE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Found:
    """Problems of one file, named with the file's own column headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers, self.problems = headers, list[Problem]()

    def add(self, at: int, column: str, message: str, **facts: Any) -> None:
        self.problems.append(Problem(at, self.headers.get(column, column), message, facts))


async def site_ids_by_code(session: AsyncSession) -> dict[str, int]:
    return dict((await session.execute(select(Site.code, Site.id))).all())


def _site_refused(
    found: _Found, row: int, code: str, sites: dict[str, int], allowed: frozenset[int] | None
) -> bool:
    """Unknown sites and sites the uploader does not work on are refused, row by row."""
    if code not in sites:
        found.add(row, "site", N_("Unknown site: {code}."), code=code)
        return True
    if allowed is not None and sites[code] not in allowed:
        found.add(row, "site", N_("You do not work at site {site}."), site=code)
        return True
    return False


async def check_products(
    session: AsyncSession, rows: list[tuple[int, Record]], headers: dict[str, str]
) -> list[Problem]:
    """A GTIN may not belong to a product the file does not mention."""
    found = _Found(headers)
    products = [(row, p) for row, p in rows if isinstance(p, ProductData)]
    in_file = {p.sku for _row, p in products}
    wanted = {code: (row, p.sku) for row, p in products for code in p.gtins}
    for part in slices(sorted(wanted)):
        owners = await session.execute(
            select(ProductBarcode.code, Product.sku)
            .join(Product, Product.id == ProductBarcode.product_id)
            .where(ProductBarcode.code.in_(part))
        )
        for code, owner in owners:
            row, sku = wanted[code]
            if owner != sku and owner not in in_file:
                found.add(row, "gtins", N_("GTIN {gtin} already belongs to {sku}."), gtin=code, sku=owner)
    return found.problems


async def check_locations(
    session: AsyncSession,
    rows: list[tuple[int, Record]],
    headers: dict[str, str],
    allowed: frozenset[int] | None,
) -> list[Problem]:
    """Known sites the uploader works on; barcodes not taken by another location."""
    found = _Found(headers)
    sites = await site_ids_by_code(session)
    locations = [(row, loc) for row, loc in rows if isinstance(loc, LocationData)]
    by_barcode = {loc.barcode: (row, loc) for row, loc in locations if loc.barcode}
    for row, loc in locations:
        _site_refused(found, row, loc.site_code, sites, allowed)
    for part in slices(sorted(by_barcode)):
        owners = await session.execute(
            select(Location.barcode, Site.code, Location.code)
            .join(Site, Site.id == Location.site_id)
            .where(Location.barcode.in_(part))
        )
        for barcode, site, code in owners:
            row, loc = by_barcode[barcode]
            if (site, code) != (loc.site_code, loc.code):
                found.add(
                    row,
                    "barcode",
                    N_("Barcode {barcode} already belongs to location {code}."),
                    barcode=barcode,
                    code=f"{site} {code}",
                )
    return found.problems


class _StockFacts:
    """Sites, locations, products and lots named by a stock file, loaded in a few queries."""

    def __init__(self) -> None:
        self.sites: dict[str, int] = {}
        self.locations: dict[tuple[int, str], tuple[str, bool]] = {}  # (site, code or barcode) → code, active
        self.products: dict[str, tuple[int, bool, bool, bool]] = {}  # sku → id, lot, expiry, active
        self.lots: dict[tuple[int, str], date | None] = {}  # (product, lot) → expiry

    async def load(self, session: AsyncSession, lines: list[StockRow]) -> None:
        self.sites = await site_ids_by_code(session)
        site_ids = sorted({self.sites[line.site] for line in lines if line.site in self.sites})
        places = await session.execute(
            select(Location.site_id, Location.code, Location.barcode, Location.is_active).where(
                Location.site_id.in_(site_ids)
            )
        )
        for site_id, code, barcode, active in places:
            self.locations[(site_id, barcode)] = (code, active)
            self.locations[(site_id, code.upper())] = (code, active)
        for part in slices(sorted({line.sku for line in lines})):
            products = await session.execute(
                select(
                    Product.sku, Product.id, Product.lot_tracked, Product.expiry_tracked, Product.is_active
                ).where(Product.sku.in_(part))
            )
            self.products.update({sku: (pid, lot, exp, active) for sku, pid, lot, exp, active in products})
        for ids in slices(sorted({pid for pid, *_flags in self.products.values()})):
            lots = await session.execute(
                select(Lot.product_id, Lot.code, Lot.expiry).where(Lot.product_id.in_(ids))
            )
            self.lots.update({(pid, code): expiry for pid, code, expiry in lots})


async def check_stock(
    session: AsyncSession,
    rows: list[tuple[int, Record]],
    headers: dict[str, str],
    allowed: frozenset[int] | None,
) -> tuple[list[Problem], list[OpeningLine]]:
    """Each line's site, location, product and lot exist and agree; returns the lines ready to write."""
    found = _Found(headers)
    stock = [(row, line) for row, line in rows if isinstance(line, StockRow)]
    facts = _StockFacts()
    await facts.load(session, [line for _row, line in stock])
    ready: list[OpeningLine] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    new_lots: dict[tuple[int, str], date | None] = {}
    for row, line in stock:
        opening = _stock_line(found, row, line, facts, allowed, new_lots)
        if opening is None:
            continue
        key = (opening.site, opening.location, opening.product, opening.lot or "")
        first = seen.setdefault(key, row)
        if first != row:  # one location named by its code here and by its barcode there
            found.add(
                row,
                "location",
                N_("The same site, location, SKU and lot already appear in row {row}."),
                row=first,
            )
        else:
            ready.append(opening)
    return found.problems, ready


def _stock_line(
    found: _Found,
    row: int,
    line: StockRow,
    facts: _StockFacts,
    allowed: frozenset[int] | None,
    new_lots: dict[tuple[int, str], date | None],
) -> OpeningLine | None:
    """One line checked as the ledger would check it, or None with its problems noted."""
    if _site_refused(found, row, line.site, facts.sites, allowed):
        return None
    location = facts.locations.get((facts.sites[line.site], line.location)) or facts.locations.get(
        (facts.sites[line.site], line.location.upper())
    )
    product = facts.products.get(line.sku)
    if location is None:
        found.add(row, "location", N_("Unknown location at this site: {code}."), code=line.location)
    elif not location[1]:
        found.add(row, "location", N_("Location {code} is not in use."), code=location[0])
    if product is None or not product[3]:
        found.add(row, "sku", N_("Unknown product: {product}."), product=line.sku)
    if location is None or not location[1] or product is None or not product[3]:
        return None
    product_id, lot_tracked, expiry_tracked, _active = product
    if not lot_tracked:
        if line.lot or line.expiry:
            column = "lot" if line.lot else "expiry"
            found.add(row, column, N_("Product {sku} is not tracked by lot."), sku=line.sku)
            return None
    elif line.lot is None:
        found.add(row, "lot", N_("Product {sku} is tracked by lot: scan or enter the lot."), sku=line.sku)
        return None
    elif not _lot_agrees(found, row, line, product_id, expiry_tracked, facts, new_lots):
        return None
    return OpeningLine(line.site, location[0], line.sku, line.lot, line.expiry, line.quantity)


def _lot_agrees(
    found: _Found,
    row: int,
    line: StockRow,
    product_id: int,
    expiry_tracked: bool,
    facts: _StockFacts,
    new_lots: dict[tuple[int, str], date | None],
) -> bool:
    """A known lot keeps its expiry date; a new one needs one if tracked, the same on every line."""
    key = (product_id, line.lot or "")
    known = key in facts.lots
    expected = facts.lots[key] if known else new_lots.setdefault(key, line.expiry)
    if not known and expiry_tracked and line.expiry is None:
        found.add(row, "expiry", N_("Lot {lot} needs its expiry date."), lot=line.lot)
        return False
    if line.expiry is not None and expected is not None and expected != line.expiry:
        found.add(
            row,
            "expiry",
            N_("Lot {lot} of {sku} expires on {expected}, not {given}."),
            lot=line.lot,
            sku=line.sku,
            expected=expected,
            given=line.expiry,
        )
        return False
    return True
