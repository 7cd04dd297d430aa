"""A small catalogue at the LYS site for stock tests, and the ledger-equals-balances check."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, text

from app.db.models import Location, Product, ProductBarcode, Site


@dataclass(frozen=True)
class Catalog:
    site_id: int
    other_site_id: int


LOCATIONS = [
    ("QUAI-R1", "receiving", 10),
    ("A-01-01", "storage", 20),
    ("A-01-02", "storage", 30),
    ("A-01-03", "storage", 40),
    ("B-01-01", "storage", 50),
    ("QUAI-E1", "dispatch", 60),
]
PRODUCTS = [  # sku, name, pack, lot, expiry, gtin
    ("SKU-WATER", "Eau minérale 1,5 L", 6, False, False, "03760000000017"),
    ("SKU-YOG", "Yaourt nature x4", 12, True, True, "03760000000024"),
    ("SKU-GLOVE", "Gants nitrile taille M", 10, True, False, "03760000000031"),
    ("SKU-FLOUR", "Farine T55 1 kg", 10, False, False, "03760000000048"),
]


async def make_catalog(db) -> Catalog:
    async with db.transaction() as s:
        sites = dict((await s.execute(select(Site.code, Site.id))).all())
        await s.execute(
            insert(Location),
            [
                {
                    "site_id": sites["LYS"],
                    "code": code,
                    "barcode": f"LOC-LYS-{code}",
                    "kind": kind,
                    "zone": code[0],
                    "pick_seq": seq,
                }
                for code, kind, seq in LOCATIONS
            ],
        )
        await s.execute(
            insert(Location),
            [
                {
                    "site_id": sites["LIL"],
                    "code": "A-01-01",
                    "barcode": "LOC-LIL-A-01-01",
                    "kind": "storage",
                    "zone": "A",
                    "pick_seq": 10,
                }
            ],
        )
        ids = (
            await s.scalars(
                insert(Product).returning(Product.id),
                [
                    {"sku": sku, "name": name, "pack_size": pack, "lot_tracked": lot, "expiry_tracked": exp}
                    for sku, name, pack, lot, exp, _gtin in PRODUCTS
                ],
            )
        ).all()
        await s.execute(
            insert(ProductBarcode),
            [
                {"product_id": pid, "code": p[5], "kind": "gtin", "units": 1}
                for pid, p in zip(ids, PRODUCTS, strict=True)
            ],
        )
    return Catalog(sites["LYS"], sites["LIL"])


LEDGER_MISMATCHES = text("""
    WITH ledger AS (
        SELECT product_id, location_id, coalesce(lot_id, 0) AS lot, sum(qty) AS qty FROM (
            SELECT product_id, to_location_id AS location_id, lot_id, quantity AS qty
              FROM stock_movements WHERE to_location_id IS NOT NULL
            UNION ALL
            SELECT product_id, from_location_id, lot_id, -quantity
              FROM stock_movements WHERE from_location_id IS NOT NULL) m
        GROUP BY 1, 2, 3)
    SELECT coalesce(l.product_id, b.product_id), coalesce(l.location_id, b.location_id),
           coalesce(l.qty, 0) AS ledger, coalesce(b.on_hand, 0) AS on_hand
    FROM ledger l FULL JOIN stock_balances b
      ON b.product_id = l.product_id AND b.location_id = l.location_id AND coalesce(b.lot_id, 0) = l.lot
    WHERE coalesce(l.qty, 0) <> coalesce(b.on_hand, 0)
""")


async def assert_ledger_equals_balances(db) -> None:
    async with db.sessions() as s:
        mismatches = (await s.execute(LEDGER_MISMATCHES)).all()
        negative = await s.scalar(
            text("SELECT count(*) FROM stock_balances WHERE on_hand < 0 OR reserved > on_hand")
        )
    assert mismatches == []
    assert negative == 0


RESERVED_MISMATCHES = text("""
    SELECT b.product_id, b.location_id, b.lot_id, b.reserved, coalesce(t.units, 0)
    FROM stock_balances b
    FULL JOIN (SELECT product_id, location_id, coalesce(lot_id, 0) AS lot, sum(quantity) AS units
               FROM pick_tasks WHERE status = 'open' GROUP BY 1, 2, 3) t
      ON t.product_id = b.product_id AND t.location_id = b.location_id AND t.lot = coalesce(b.lot_id, 0)
    WHERE coalesce(b.reserved, 0) <> coalesce(t.units, 0)
""")
ALLOCATED_MISMATCHES = text("""
    SELECT l.id, l.allocated, coalesce(t.units, 0)
    FROM dispatch_order_lines l
    LEFT JOIN (SELECT order_line_id, sum(quantity) AS units FROM pick_tasks
               WHERE status = 'open' GROUP BY 1) t ON t.order_line_id = l.id
    WHERE l.allocated <> coalesce(t.units, 0)
""")


async def assert_stock_invariants(db) -> None:
    """Ledger = balances, nothing negative, and every reservation is an open pick task (and back)."""
    await assert_ledger_equals_balances(db)
    async with db.sessions() as s:
        assert (await s.execute(RESERVED_MISMATCHES)).all() == []
        assert (await s.execute(ALLOCATED_MISMATCHES)).all() == []
