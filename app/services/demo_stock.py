"""The demo warehouse's stock at go-live: what each storage location holds, from the same seed."""

from __future__ import annotations

import random
from datetime import date, timedelta

from app.services.demo_data import DemoData
from app.services.stock import OpeningLine

STOCKED_SHARE = 0.6  # of the catalogue, per site: the rest is out of stock (searches must show both)
EXPIRED_SHARE = 0.03  # of the fresh lots: a few lots past their date, as every real warehouse has


def opening_stock(data: DemoData, seed: int, today: date) -> list[OpeningLine]:
    """1–3 storage locations per stocked product and site, in whole packs, with lots and dates if tracked.

    The promoted products are stocked at every site, but short: a few packs where their orders ask for
    several times as many (about half of it), so that a run shares them out."""
    rng = random.Random(f"{seed}:stock")  # noqa: S311 - demo data, not secrets
    promoted = {product.sku for product in data.promoted}
    lines: list[OpeningLine] = []
    for site in data.sites:
        storage = [loc.code for loc in data.locations if loc.site_code == site.code and loc.kind == "storage"]
        fresh = [
            loc.code for loc in data.locations if loc.site_code == site.code and loc.zone == "F"
        ] or storage
        stocked = rng.sample(list(data.products), int(len(data.products) * STOCKED_SHARE))
        skus = {product.sku for product in stocked}
        stocked += [product for product in data.promoted if product.sku not in skus]
        for product in stocked:
            places = fresh if product.expiry_tracked else storage
            for location in rng.sample(places, rng.choice((1, 1, 2, 3))):
                lot = expiry = None
                if product.lot_tracked:
                    lot = f"L{today:%y}{rng.randrange(10_000, 99_999)}"
                if product.expiry_tracked:
                    days = -rng.randrange(1, 10) if rng.random() < EXPIRED_SHARE else rng.randrange(5, 240)
                    expiry = today + timedelta(days=days)
                packs = rng.randrange(3, 14) if product.sku in promoted else rng.randrange(2, 40)
                quantity = packs * product.pack_size
                lines.append(OpeningLine(site.code, location, product.sku, lot, expiry, quantity))
    return lines
