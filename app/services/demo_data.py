"""Deterministic demo data: two French warehouses, a catalogue, destinations and a day of orders.

Pure: no I/O and no clock. The same seed and date always give the same data, so a demo, a
screenshot or a bug report can be reproduced exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from biip.checksums import gs1_standard_check_digit

from app.services.demo_words import CATEGORIES, CITIES, CUSTOMER_NAMES, Category

PARIS = ZoneInfo("Europe/Paris")
PRODUCT_COUNT = 2000
# The week's promotion: a few products that many orders ask for and whose stock runs short, so that a
# dispatch run has to share them out (and the policies, compared, give different splits).
PROMOTED_COUNT = 40
PROMOTED_SHARE = 0.3  # of the order lines
GS1_FRANCE = "376"  # GS1 France prefixes run from 300 to 379


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class DemoLocation:
    site_code: str
    code: str
    barcode: str
    kind: str
    zone: str
    pick_seq: int


@dataclass(frozen=True)
class DemoBarcode:
    code: str
    kind: str
    units: int


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    pack_size: int
    lot_tracked: bool
    expiry_tracked: bool
    round_up_packs: bool
    barcodes: tuple[DemoBarcode, ...]
    unit: str = "unit"


@dataclass(frozen=True)
class DemoDestination:
    code: str
    name: str
    kind: str
    tier: int
    min_units: int | None
    max_units: int | None
    site_code: str  # the warehouse that usually serves it (drives the orders; not stored)


@dataclass(frozen=True)
class DemoLine:
    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class DemoOrder:
    number: str
    site_code: str
    destination_code: str
    state: str
    priority: int
    due_at: datetime
    lines: tuple[DemoLine, ...]
    source: str = "demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    full_name: str
    site_codes: tuple[str, ...]


@dataclass(frozen=True)
class DemoData:
    sites: tuple[DemoSite, ...]
    locations: tuple[DemoLocation, ...]
    products: tuple[DemoProduct, ...]
    destinations: tuple[DemoDestination, ...]
    orders: tuple[DemoOrder, ...]
    users: tuple[DemoUser, ...]
    promoted: tuple[DemoProduct, ...]  # on promotion this week (PROMOTED_COUNT, above)


SITES = (DemoSite("LYS", "Lyon Saint-Priest"), DemoSite("LIL", "Lille Lesquin"))
# Storage per site: (zone, aisles, bays per aisle). F is the fresh (chilled) zone.
LAYOUTS = {
    "LYS": (("A", 4, 14), ("B", 4, 12), ("C", 3, 12), ("F", 3, 10)),
    "LIL": (("A", 3, 14), ("B", 3, 12), ("C", 2, 12), ("F", 3, 10)),
}
DEMO_USERS = (
    DemoUser("admin", "demo-admin-2026", "admin", "Camille Bernard", ()),
    DemoUser("chef", "demo-chef-2026", "supervisor", "Sophie Martin", ("LIL", "LYS")),
    DemoUser("paul", "demo-paul-2026", "operator", "Paul Girard", ("LYS",)),
    DemoUser("ines", "demo-ines-2026", "operator", "Inès Moreau", ("LIL",)),
)
DEMO_ACCOUNTS: tuple[tuple[str, str, str], ...] = tuple((u.username, u.password, u.role) for u in DEMO_USERS)

# Where an order of the day would be by mid-morning, with its weight and the local hours its due time
# falls in (orders due early are further down the pipeline). The demo holds demand only: an order past
# "released" needs the reservations, picks and shipments of dispatch runs behind it, so every order
# drawn further down is loaded released (and those due early show what late orders look like). The
# draws stay those of the full pipeline, so a seed gives the same orders and lines as before.
STAGES = {
    "dispatched": (6, (6, 10)),
    "picked": (7, (8, 12)),
    "picking": (9, (9, 13)),
    "allocated": (12, (10, 16)),
    "released": (50, (10, 19)),
    "draft": (16, (13, 20)),
}


def generate_demo(seed: int, today: date) -> DemoData:
    """Build the whole demo data set from `seed`, with the orders of `today` (Paris time)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible on purpose; nothing here is secret
    locations = tuple(loc for site in SITES for loc in _site_locations(site.code))
    products = _products(rng)
    promoted = products[:PROMOTED_COUNT]  # the catalogue comes shuffled: a mix of categories
    destinations = _destinations(rng)
    orders = _orders(rng, today, products, promoted, destinations)
    return DemoData(SITES, locations, products, destinations, orders, DEMO_USERS, promoted)


# ---------------------------------------------------------------- locations


def _site_locations(site: str) -> list[DemoLocation]:
    """Docks, storage and quarantine of one site, numbered in walking order (steps of 10 leave room)."""
    places = [("receiving", "QUAI", "QUAI-R1"), ("receiving", "QUAI", "QUAI-R2")]
    for zone, aisles, bays in LAYOUTS[site]:
        for aisle in range(1, aisles + 1):
            # Serpentine: up odd aisles, down even ones, so the walk never doubles back.
            order = range(1, bays + 1) if aisle % 2 else range(bays, 0, -1)
            places += [("storage", zone, f"{zone}-{aisle:02d}-{bay:02d}") for bay in order]
    places += [("quarantine", "QUAR", "QUAR-01")]
    places += [("dispatch", "QUAI", "QUAI-E1"), ("dispatch", "QUAI", "QUAI-E2")]
    return [
        DemoLocation(site, code, f"LOC-{site}-{code}", kind, zone, 10 * (n + 1))
        for n, (kind, zone, code) in enumerate(places)
    ]


# ---------------------------------------------------------------- products


def _products(rng: random.Random) -> tuple[DemoProduct, ...]:
    """The catalogue: each category's share of names, shuffled, with sparse SKU numbers and GTINs."""
    total = sum(c.weight for c in CATEGORIES)
    drawn: list[tuple[Category, str, str]] = []
    for category in CATEGORIES:
        names = _names(category)
        share = min(len(names), round(PRODUCT_COUNT * category.weight / total))
        drawn += [(category, brand, name) for brand, name in rng.sample(names, share)]
    drawn = drawn[:PRODUCT_COUNT]
    rng.shuffle(drawn)
    skus = sorted(rng.sample(range(100, 1_000_000), len(drawn)))  # real catalogues have gaps
    companies = _company_prefixes(rng, sorted({brand for _, brand, _ in drawn}))
    items: dict[str, int] = {}
    products = []
    for sku, (category, brand, name) in zip(skus, drawn, strict=True):
        items[brand] = items.get(brand, 0) + 1
        unit_payload = f"{companies[brand]}{items[brand]:05d}"
        products.append(_product(rng, category, f"SKU-{sku:06d}", name, unit_payload))
    return tuple(products)


def _names(category: Category) -> list[tuple[str, str]]:
    """Every (brand, product name) the category can make, in a stable order."""
    names = []
    for item in category.items:
        base, sizes = item.split("|")
        for size in sizes.split(";"):
            for qualifier in category.qualifiers:
                for brand in category.brands:
                    names.append((brand, " ".join(p for p in (base, qualifier, brand, size) if p)))
    return names


def _company_prefixes(rng: random.Random, brands: list[str]) -> dict[str, str]:
    """A distinct 7-digit GS1 company prefix per brand, each with room for 100,000 items."""
    numbers = rng.sample(range(10_000), len(brands))
    return {brand: f"{GS1_FRANCE}{n:04d}" for brand, n in zip(brands, numbers, strict=True)}


def _product(rng: random.Random, category: Category, sku: str, name: str, payload: str) -> DemoProduct:
    """One product with its unit EAN-13 and, when sold by the case, the case GTIN-14."""
    pack = rng.choice(category.packs)
    lot = rng.random() < category.lot_share
    expiry = lot and rng.random() < category.expiry_share
    barcodes = [DemoBarcode(gtin(payload), "gtin", 1)]
    if pack > 1:
        barcodes.append(DemoBarcode(gtin("1" + payload), "gtin", pack))  # indicator 1: the case
    return DemoProduct(sku, name, pack, lot, expiry, rng.random() < 0.3, tuple(barcodes))


def gtin(payload: str) -> str:
    """A GTIN: the payload followed by its GS1 check digit."""
    return payload + str(gs1_standard_check_digit(payload))


# ---------------------------------------------------------------- destinations


def _destinations(rng: random.Random) -> tuple[DemoDestination, ...]:
    """Stores, branches and customers around the two warehouses."""
    cities = [(city, site) for site, names in CITIES.items() for city in names]
    rng.shuffle(cities)
    kinds = [("store", "MAG", "Magasin {}")] * 26 + [("branch", "AGE", "Agence {}")] * 8
    kinds += [("customer", "CLI", name) for name in rng.sample(CUSTOMER_NAMES, 6)]
    tiers = [1] * 4 + [2] * 24 + [3] * 12  # a fixed mix, so every seed has a few top-tier destinations
    rng.shuffle(tiers)
    numbers: dict[str, int] = {}
    result = []
    for (city, site), (kind, prefix, pattern), tier in zip(cities, kinds, tiers, strict=True):
        numbers[prefix] = numbers.get(prefix, 0) + 1
        low = rng.choice((12, 24, 48, 60)) if rng.random() < 0.4 else None
        high = rng.randrange(240, 2401, 120) if rng.random() < 0.4 else None  # always above any minimum
        code = f"{prefix}-{numbers[prefix]:03d}"
        result.append(DemoDestination(code, pattern.format(city), kind, tier, low, high, site))
    return tuple(sorted(result, key=lambda d: d.code))


# ---------------------------------------------------------------- orders


def _orders(
    rng: random.Random,
    today: date,
    products: tuple[DemoProduct, ...],
    promoted: tuple[DemoProduct, ...],
    destinations: tuple[DemoDestination, ...],
) -> tuple[DemoOrder, ...]:
    """A day of demand, numbered in due-time order."""
    orders = []
    for _ in range(rng.randint(140, 190)):
        destination = rng.choice(destinations)
        # Most demand goes to the warehouse nearby; some is served from the other one.
        site = destination.site_code if rng.random() < 0.9 else rng.choice(SITES).code
        stage = rng.choices(list(STAGES), weights=[weight for weight, _ in STAGES.values()])[0]
        priority = rng.choices((1, 2, 3), weights=(2, 6, 3))[0]
        due_at = _due_at(rng, today, stage)
        state = "draft" if stage == "draft" else "released"
        lines = _lines(rng, products, promoted)
        orders.append(DemoOrder("", site, destination.code, state, priority, due_at, lines))
    orders.sort(key=lambda o: (o.due_at, o.site_code, o.destination_code))  # stable: ties keep draw order
    return tuple(
        replace(order, number=f"CMD-{today:%Y%m%d}-{n:04d}") for n, order in enumerate(orders, start=1)
    )


def _due_at(rng: random.Random, today: date, stage: str) -> datetime:
    """A quarter-hour of `today` in Paris within the stage's window, as an aware UTC datetime."""
    first, last = STAGES[stage][1]
    minutes = 15 * rng.randrange(first * 4, last * 4)
    local = datetime.combine(today, time(), tzinfo=PARIS) + timedelta(minutes=minutes)
    return local.astimezone(UTC)


def _lines(
    rng: random.Random, products: tuple[DemoProduct, ...], promoted: tuple[DemoProduct, ...]
) -> tuple[DemoLine, ...]:
    """1 to 25 lines of distinct products; most orders have a handful, and a share of them ask for the
    week's promoted products."""
    count = min(25, max(1, round(rng.triangular(1, 25, 4))))
    chosen: dict[str, DemoProduct] = {}
    while len(chosen) < count:
        product = rng.choice(promoted if rng.random() < PROMOTED_SHARE else products)
        chosen.setdefault(product.sku, product)
    return tuple(
        DemoLine(n, product.sku, _quantity(rng, product.pack_size))
        for n, product in enumerate(chosen.values(), start=1)
    )


def _quantity(rng: random.Random, pack: int) -> int:
    """Mostly whole cases; sometimes loose units, as for slow sellers."""
    if pack > 1 and rng.random() < 0.8:
        return pack * rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10))
    return rng.choice((1, 2, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 36, 48))
