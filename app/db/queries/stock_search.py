"""The one-box stock search: SKU, GTIN, name words (accent-insensitive), lot or location.

One hand-written statement per shape (no words, or n words), run through asyncpg's prepared statements:
the search answers each keystroke of the box, and building and compiling the same SQLAlchemy construct
of five `UNION ALL` branches, a window and a lateral join cost about 10 ms of Python per search, more
than the search itself (bench/README.md, "The stock search, rewritten").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.folding import fold_text
from app.db.session import driver
from app.domain.scan import classify_scan, repair_azerty

MIN_FRAGMENT = 2  # characters of a name or SKU fragment
# Words a search takes, the first ones typed: ten already name any product, and a pasted paragraph must
# not make a statement of thousands of parameters (PostgreSQL refuses more than 65,535).
MAX_WORDS = 10


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        words = words[:MAX_WORDS]
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


# (product_id, rank, via, via_code) for every way the terms find a product; rank 0 is an exact code.
# $1 is the site; $2 the exact codes (SKU, lot, location code or barcode); $3 those and the GTIN forms.
_CODE_HITS = """
    SELECT id AS product_id, 0 AS rank, 'sku' AS via, NULL::text AS via_code FROM products
     WHERE sku = ANY($2::text[])
    UNION ALL
    SELECT product_id, 0, 'gtin', code FROM product_barcodes WHERE code = ANY($3::text[])
    UNION ALL
    SELECT product_id, 1, 'lot', code FROM lots WHERE code = ANY($2::text[])
    UNION ALL
    SELECT b.product_id, 1, 'location', l.code
      FROM stock_balances b JOIN locations l ON l.id = b.location_id
     WHERE l.site_id = $1 AND (l.code = ANY($2::text[]) OR l.barcode = ANY($2::text[])) AND b.on_hand > 0"""
# An empty box: what the site holds.
_STOCK_HITS = """
    SELECT DISTINCT b.product_id, 2 AS rank, 'stock' AS via, NULL::text AS via_code
      FROM stock_balances b
     WHERE b.location_id IN (SELECT id FROM locations WHERE site_id = $1) AND b.on_hand > 0"""
_BEST = """
    best AS (  -- one row per product: the best way it was found
        SELECT DISTINCT ON (product_id) product_id, rank, via, via_code FROM hits
         ORDER BY product_id, rank, via_code)"""
# Products with stock here come first (an operator looking for "lait" wants the milk on the shelves);
# the page is cut first, then the stock of its products only is added up.
_PAGE = """,
    here AS MATERIALIZED (SELECT array_agg(id) AS locations FROM locations WHERE site_id = $1)
SELECT p.id, p.sku, p.name, p.unit, p.pack_size, p.is_active, s.on_hand, s.reserved, s.locations,
       page.via, page.via_code, page.total
  FROM (SELECT best.product_id, best.rank, best.via, best.via_code, p.sku,
               -- a probe per product found (most searches find a few), not a hash of all the site's stock
               (SELECT true FROM stock_balances b
                 WHERE b.product_id = best.product_id AND b.location_id = ANY(here.locations)
                   AND b.on_hand > 0
                 LIMIT 1) IS NOT NULL AS in_stock,
               count(*) OVER () AS total
          FROM best JOIN products p ON p.id = best.product_id CROSS JOIN here
         ORDER BY best.rank, in_stock DESC, p.sku
         LIMIT ${limit} OFFSET ${offset}) AS page
  JOIN products p ON p.id = page.product_id
  CROSS JOIN here
  CROSS JOIN LATERAL (
        SELECT coalesce(sum(b.on_hand), 0) AS on_hand, coalesce(sum(b.reserved), 0) AS reserved,
               count(DISTINCT b.location_id) FILTER (WHERE b.on_hand > 0) AS locations
          FROM stock_balances b
         WHERE b.product_id = page.product_id AND b.location_id = ANY(here.locations)) AS s
 ORDER BY page.rank, page.in_stock DESC, p.sku"""
_LOCATIONS = """
SELECT code, kind, is_active FROM locations
 WHERE site_id = $1 AND (code = ANY($2::text[]) OR barcode = ANY($2::text[]))
 ORDER BY pick_seq, code"""


@functools.cache  # at most MAX_WORDS + 2 shapes
def _statements(words: int | None) -> tuple[str, str]:
    """(the page, the count of all) for an empty box (None) or a box of `words` name or SKU fragments.

    Every word must appear in the folded name (`products.search_name`, app/db/folding.py) or in the SKU:
    word n is ${4+2n} (folded, for the name) and ${5+2n} (upper case, for the SKU), both LIKE patterns.
    The count takes the page's arguments but its last two, the limit and the offset.
    """
    if words is None:
        hits, given = _STOCK_HITS, 1
    else:
        hits, given = _CODE_HITS, 3 + 2 * words
        if words:
            each = (
                f"(search_name LIKE ${4 + 2 * n} ESCAPE '\\' OR upper(sku) LIKE ${5 + 2 * n} ESCAPE '\\')"
                for n in range(words)
            )
            hits += f"""
    UNION ALL
    SELECT id, 2, 'name', NULL FROM products WHERE {" AND ".join(each)}"""
    found = f"WITH hits AS ({hits}),{_BEST}"
    return found + _PAGE.format(limit=given + 1, offset=given + 2), found + " SELECT count(*) FROM best"


async def search_stock(
    session: AsyncSession, site_id: int, text: str, limit: int = 25, offset: int = 0
) -> StockSearch:
    """Products matching the box (exact codes first, then what is in stock here), with their stock here."""
    terms = SearchTerms.read(text)
    connection = await driver(session)
    arguments: list[Any] = [site_id]
    if terms.text:
        arguments += [list(terms.codes), list(terms.codes + terms.gtins)]
        for word in terms.words:
            arguments += [f"%{_like_escape(fold_text(word))}%", f"%{_like_escape(word.upper())}%"]
    page, count = _statements(len(terms.words) if terms.text else None)
    rows = await connection.fetch(page, *arguments, limit, offset)
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:  # past the last page: still say how many there are
        total = int(await connection.fetchval(count, *arguments))
    locations: list[LocationHit] = []
    if terms.codes:
        found = await connection.fetch(_LOCATIONS, site_id, list(terms.codes))
        locations = [LocationHit(*r) for r in found]
    stock_rows = [
        StockRow(
            r["id"],
            r["sku"],
            r["name"],
            r["unit"],
            r["pack_size"],
            r["is_active"],
            int(r["on_hand"]),
            int(r["reserved"]),
            int(r["locations"]),
            r["via"],
            r["via_code"],
        )
        for r in rows
    ]
    return StockSearch(terms, stock_rows, total, locations)
