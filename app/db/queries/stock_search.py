"""The one-box stock search: SKU, GTIN, name words (accent-insensitive), lot or location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import (
    Location,
    Lot,
    Product,
    ProductBarcode,
    StockBalance,
)
from app.domain.scan import classify_scan, repair_azerty

MIN_FRAGMENT = 2  # characters of a name or SKU fragment

# Accent folding without the `unaccent` extension (not in every PostgreSQL build, pgserver's included).
# fold_text() does in Python what _fold() does in SQL: names are folded by the database, words by us.
_ACCENTED = "àâäáãåÀÂÄÁÃÅçÇéèêëÉÈÊËíìîïÍÌÎÏñÑóòôöõÓÒÔÖÕúùûüÚÙÛÜýÿÝŸ"
_PLAIN = "aaaaaaAAAAAAcCeeeeEEEEiiiiIIIInNoooooOOOOOuuuuUUUUyyYY"
_LIGATURES = (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae"))
_FOLD = str.maketrans(_ACCENTED, _PLAIN)
_WITH_ACCENTED_FORMS = frozenset(_PLAIN.lower())  # a c e i n o u y


def _fold(value: Any) -> ColumnElement[str]:
    """Lower case, without accents, with œ/æ spelled out: "Œufs frais" and "oeufs" meet as "oeufs"."""
    folded = func.translate(value, _ACCENTED, _PLAIN)
    for ligature, letters in _LIGATURES:
        folded = func.replace(folded, ligature, letters)
    return func.lower(folded)


def fold_text(text: str) -> str:
    text = text.translate(_FOLD)
    for ligature, letters in _LIGATURES:
        text = text.replace(ligature, letters)
    return text.lower()


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _loose_pattern(folded: str) -> str:
    """An ILIKE pattern that every name whose folded form holds `folded` matches, and most others don't.

    translate() with multibyte sets costs ~5 µs a name; this cheap first pass spares it for most of
    the catalogue. Letters with accented forms match any one character ("_"), and "oe"/"ae" anything
    ("%"), since the name may spell them as one ligature.
    """
    out, i = [], 0
    while i < len(folded):
        if folded[i : i + 2] in ("oe", "ae"):
            out.append("%")
            i += 2
            continue
        char = folded[i]
        out.append("_" if char in _WITH_ACCENTED_FORMS or not char.isascii() else _like_escape(char))
        i += 1
    return "%" + "".join(out) + "%"


# ---------------------------------------------------------------- the search box


@dataclass(frozen=True)
class SearchTerms:
    """What the box holds, read every way it can be meant."""

    text: str  # as typed, whitespace collapsed
    codes: tuple[str, ...]  # exact codes: SKU, lot, location code or barcode, internal barcode
    gtins: tuple[str, ...]  # the scanned GTIN as 14, 13, 12 or 8 digits (stored codes vary in length)
    words: tuple[str, ...]  # name and SKU fragments, every one of which must appear

    @classmethod
    def read(cls, raw: str) -> SearchTerms:
        text = " ".join(raw.split())
        if not text:
            return cls("", (), (), ())
        scan = classify_scan(text)
        cleaned = repair_azerty(text) if scan.repaired else text  # what an AZERTY-mangled scan meant
        codes = {text, text.upper(), cleaned, cleaned.upper()}
        gtins: set[str] = set()
        if scan.kind == "gtin":
            gtins |= _gtin_forms(scan.value)
        elif scan.kind == "gs1" and scan.gs1 is not None:
            if scan.gs1.gtin:
                gtins |= _gtin_forms(scan.gs1.gtin)
            if scan.gs1.lot:
                codes |= {scan.gs1.lot, scan.gs1.lot.upper()}
        # Single letters would match most of the catalogue and cost a scan of it: fragments start at two.
        words = tuple(w for w in text.split() if len(w) >= MIN_FRAGMENT) if scan.kind == "text" else ()
        return cls(text, tuple(sorted(codes)), tuple(sorted(gtins)), words)


def _gtin_forms(gtin14: str) -> set[str]:
    """GTIN-14 and its shorter forms when the leading digits are zeros (EAN-13, UPC-A, EAN-8)."""
    code = gtin14.zfill(14)
    return {code[-n:] for n in (8, 12, 13, 14) if not code[:-n].strip("0")}


@dataclass(frozen=True)
class StockRow:
    """One product found, with its stock at the site."""

    product_id: int
    sku: str
    name: str
    unit: str
    pack_size: int
    is_active: bool
    on_hand: int
    reserved: int
    locations: int
    via: str  # how it was found: sku, gtin, lot, location, name, stock
    via_code: str | None  # the lot or location code that matched

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class LocationHit:
    code: str
    kind: str
    is_active: bool


@dataclass(frozen=True)
class StockSearch:
    terms: SearchTerms
    rows: list[StockRow]
    total: int
    locations: list[LocationHit]  # locations of the site whose code or barcode is what was typed


def _hit(product_id: Any, rank: int, via: str, code: Any = None) -> Select[*tuple[Any, ...]]:
    return select(
        product_id.label("product_id"),
        literal(rank).label("rank"),
        literal(via).label("via"),
        (code if code is not None else literal(None, String)).label("via_code"),
    )


def _hits(site_id: int, terms: SearchTerms) -> Select[*tuple[Any, ...]]:
    """(product_id, rank, via, via_code) for every way the terms find a product; rank 0 is an exact code."""
    if not terms.text:  # an empty box: what the site holds
        site_locations = select(Location.id).where(Location.site_id == site_id)
        return (
            _hit(StockBalance.product_id, 2, "stock")
            .where(StockBalance.location_id.in_(site_locations), StockBalance.on_hand > 0)
            .distinct()
        )
    parts: list[Select[*tuple[Any, ...]]] = [
        _hit(Product.id, 0, "sku").where(Product.sku.in_(terms.codes)),
        _hit(ProductBarcode.product_id, 0, "gtin", ProductBarcode.code).where(
            ProductBarcode.code.in_(terms.codes + terms.gtins)
        ),
        _hit(Lot.product_id, 1, "lot", Lot.code).where(Lot.code.in_(terms.codes)),
        _hit(StockBalance.product_id, 1, "location", Location.code)
        .join(Location, Location.id == StockBalance.location_id)
        .where(
            Location.site_id == site_id,
            or_(Location.code.in_(terms.codes), Location.barcode.in_(terms.codes)),
            StockBalance.on_hand > 0,
        ),
    ]
    if terms.words:
        every_word = [
            or_(
                # In this order: PostgreSQL evaluates an AND inside an OR as written, cheap test first.
                and_(
                    Product.name.ilike(_loose_pattern(fold_text(word)), escape="\\"),
                    _fold(Product.name).like(f"%{_like_escape(fold_text(word))}%", escape="\\"),
                ),
                func.upper(Product.sku).like(f"%{_like_escape(word.upper())}%", escape="\\"),
            )
            for word in terms.words
        ]
        parts.append(_hit(Product.id, 2, "name").where(*every_word))
    return union_all(*parts)  # type: ignore[return-value]


async def search_stock(
    session: AsyncSession, site_id: int, text: str, limit: int = 25, offset: int = 0
) -> StockSearch:
    """Products matching the box (exact codes first, then what is in stock here), with their stock here."""
    terms = SearchTerms.read(text)
    hits = _hits(site_id, terms).subquery("hits")
    best = (  # one row per product: the best way it was found
        select(hits.c.product_id, hits.c.rank, hits.c.via, hits.c.via_code)
        .ext(distinct_on(hits.c.product_id))
        .order_by(hits.c.product_id, hits.c.rank, hits.c.via_code)
        .subquery("best")
    )
    # Products with stock here come first: an operator looking for "lait" wants the milk on the shelves.
    in_stock = (
        select(StockBalance.id)
        .join(Location, Location.id == StockBalance.location_id)
        .where(
            StockBalance.product_id == best.c.product_id,
            Location.site_id == site_id,
            StockBalance.on_hand > 0,
        )
        .exists()
        .label("in_stock")
    )
    # Paginate first, then add up stock for the page's products only.
    page = (
        select(
            best.c.product_id,
            best.c.rank,
            best.c.via,
            best.c.via_code,
            in_stock,
            Product.sku,
            func.count().over().label("total"),
        )
        .join(Product, Product.id == best.c.product_id)
        .order_by(best.c.rank, in_stock.desc(), Product.sku)
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    stock = (
        select(
            func.coalesce(func.sum(StockBalance.on_hand), 0).label("on_hand"),
            func.coalesce(func.sum(StockBalance.reserved), 0).label("reserved"),
            func.count(func.distinct(StockBalance.location_id))
            .filter(StockBalance.on_hand > 0)
            .label("locations"),
        )
        .join(Location, Location.id == StockBalance.location_id)
        .where(StockBalance.product_id == page.c.product_id, Location.site_id == site_id)
        .lateral("stock")
    )
    rows = (
        await session.execute(
            select(
                Product.id,
                Product.sku,
                Product.name,
                Product.unit,
                Product.pack_size,
                Product.is_active,
                stock.c.on_hand,
                stock.c.reserved,
                stock.c.locations,
                page.c.via,
                page.c.via_code,
                page.c.total,
            )
            .select_from(page)
            .join(Product, Product.id == page.c.product_id)
            .join(stock, true())
            .order_by(page.c.rank, page.c.in_stock.desc(), Product.sku)
        )
    ).all()
    total = int(rows[0].total) if rows else 0
    if not rows and offset:  # past the last page: still say how many there are
        total = int(await session.scalar(select(func.count()).select_from(best)) or 0)
    locations: list[LocationHit] = []
    if terms.codes:
        found = await session.execute(
            select(Location.code, Location.kind, Location.is_active)
            .where(
                Location.site_id == site_id,
                or_(Location.code.in_(terms.codes), Location.barcode.in_(terms.codes)),
            )
            .order_by(Location.pick_seq, Location.code)
        )
        locations = [LocationHit(*r) for r in found]
    return StockSearch(
        terms,
        [
            StockRow(
                r.id,
                r.sku,
                r.name,
                r.unit,
                r.pack_size,
                r.is_active,
                int(r.on_hand),
                int(r.reserved),
                int(r.locations),
                r.via,
                r.via_code,
            )
            for r in rows
        ],
        total,
        locations,
    )


# ---------------------------------------------------------------- product and location pages
