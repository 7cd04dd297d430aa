"""The demo data generator: reproducible, valid barcodes, a walkable warehouse, sensible orders."""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from biip.gtin import Gtin, GtinFormat

from app.services.demo_data import DEMO_ACCOUNTS, DemoData, generate_demo
from app.services.demo_stock import opening_stock
from app.services.passwords import password_problem
from app.services.users import USERNAME

TODAY = date(2026, 11, 25)
PACK_SIZES = {1, 4, 6, 8, 10, 12, 20, 24}


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(20261125, TODAY)


def test_the_same_seed_and_date_give_the_same_data(demo):
    assert generate_demo(20261125, TODAY) == demo


def test_another_seed_or_date_gives_other_data(demo):
    other = generate_demo(1, TODAY)
    assert other.products != demo.products
    assert other.orders != demo.orders
    assert generate_demo(20261125, date(2026, 11, 26)).orders != demo.orders


def test_counts_are_in_range(demo):
    assert [s.code for s in demo.sites] == ["LYS", "LIL"]
    assert 300 <= len(demo.locations) <= 400
    assert 1900 <= len(demo.products) <= 2100
    assert len(demo.destinations) == 40
    assert 120 <= len(demo.orders) <= 200


def test_every_gtin_is_valid_and_case_codes_carry_the_pack_size(demo):
    for product in demo.products:
        unit, *cases = product.barcodes
        parsed = Gtin.parse(unit.code)  # raises on a wrong check digit
        assert (parsed.format, unit.units, unit.kind) == (GtinFormat.GTIN_13, 1, "gtin")
        assert unit.code.startswith("376")
        assert len(cases) == (1 if product.pack_size > 1 else 0)
        for case in cases:
            parsed_case = Gtin.parse(case.code)
            assert parsed_case.format == GtinFormat.GTIN_14
            assert parsed_case.packaging_level == 1
            assert case.code[1:13] == unit.code[:12]
            assert case.units == product.pack_size


def test_codes_are_unique(demo):
    barcodes = [b.code for p in demo.products for b in p.barcodes]
    assert len(barcodes) == len(set(barcodes))
    skus = [p.sku for p in demo.products]
    assert len(skus) == len(set(skus))
    assert all(len(sku) == 10 and sku.startswith("SKU-") and sku[4:].isdigit() for sku in skus)
    assert len({p.name for p in demo.products}) == len(demo.products)
    assert len({loc.barcode for loc in demo.locations}) == len(demo.locations)
    assert len({(loc.site_code, loc.code) for loc in demo.locations}) == len(demo.locations)
    assert len({d.code for d in demo.destinations}) == len(demo.destinations)
    assert len({o.number for o in demo.orders}) == len(demo.orders)


def test_products_have_realistic_flags(demo):
    products = demo.products
    assert {p.pack_size for p in products} <= PACK_SIZES
    assert all(p.lot_tracked for p in products if p.expiry_tracked)
    lot = sum(p.lot_tracked for p in products)
    assert 0.15 <= lot / len(products) <= 0.25
    assert sum(p.expiry_tracked for p in products) > lot / 2
    assert 0.25 <= sum(p.round_up_packs for p in products) / len(products) <= 0.35
    assert {p.unit for p in products} == {"unit"}


def test_each_site_has_docks_quarantine_and_storage(demo):
    for site in demo.sites:
        kinds = Counter(loc.kind for loc in demo.locations if loc.site_code == site.code)
        assert (kinds["receiving"], kinds["dispatch"], kinds["quarantine"]) == (2, 2, 1)
        assert kinds["storage"] > 100
    assert {loc.zone for loc in demo.locations if loc.kind == "storage"} == {"A", "B", "C", "F"}
    assert "LOC-LYS-A-01-03" in {loc.barcode for loc in demo.locations}


def test_pick_sequence_walks_a_serpentine(demo):
    for site in demo.sites:
        here = [loc for loc in demo.locations if loc.site_code == site.code]
        walk = sorted(here, key=lambda loc: loc.pick_seq)
        assert len({loc.pick_seq for loc in walk}) == len(walk)
        assert walk[0].kind == "receiving"
        assert walk[-1].kind == "dispatch"
        by_zone: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for loc in walk:
            if loc.kind == "storage":
                _zone, aisle, bay = loc.code.split("-")
                by_zone[loc.zone].append((int(aisle), int(bay)))
        for zone, stops in by_zone.items():
            aisles = [aisle for aisle, _ in stops]
            assert aisles == sorted(aisles), f"{site.code} zone {zone} revisits an aisle"
            for aisle in set(aisles):
                bays = [bay for a, bay in stops if a == aisle]
                expected = sorted(bays) if aisle % 2 else sorted(bays, reverse=True)
                assert bays == expected, f"{site.code} {zone}-{aisle:02d} walks the wrong way"


def test_destinations_respect_the_database_rules(demo):
    assert {d.kind for d in demo.destinations} == {"store", "branch", "customer"}
    tiers = Counter(d.tier for d in demo.destinations)
    assert set(tiers) <= {1, 2, 3}
    assert 0 < tiers[1] < tiers[2]
    for d in demo.destinations:
        assert d.min_units is None or d.min_units >= 0
        assert d.max_units is None or d.max_units >= (d.min_units or 0)
    assert any(d.min_units is not None for d in demo.destinations)
    assert any(d.max_units is not None for d in demo.destinations)


def test_orders_are_a_day_of_sensible_demand(demo):
    skus = {p.sku for p in demo.products}
    destinations = {d.code for d in demo.destinations}
    paris = ZoneInfo("Europe/Paris")
    for order in demo.orders:
        assert order.number.startswith("CMD-20261125-")
        assert order.source == "demo"
        assert order.site_code in {"LYS", "LIL"}
        assert order.destination_code in destinations
        assert order.priority in {1, 2, 3}
        assert order.due_at.utcoffset() is not None
        assert order.due_at.tzinfo == UTC
        assert order.due_at.astimezone(paris).date() == TODAY
        assert 1 <= len(order.lines) <= 25
        assert [line.line_no for line in order.lines] == list(range(1, len(order.lines) + 1))
        assert len({line.sku for line in order.lines}) == len(order.lines)
        assert all(line.sku in skus and line.quantity > 0 for line in order.lines)
    states = Counter(o.state for o in demo.orders)
    assert states.most_common(1)[0][0] == "released"
    # Only demand: later states need reservations, picks or shipments behind them, which the demo has not.
    assert set(states) == {"draft", "released"}
    assert {o.site_code for o in demo.orders} == {"LYS", "LIL"}


def test_due_times_follow_the_order_numbers(demo):
    due = [o.due_at for o in sorted(demo.orders, key=lambda o: o.number)]
    assert due == sorted(due)
    assert all(isinstance(d, datetime) for d in due)


def test_demo_accounts_can_log_in_and_are_scoped(demo):
    assert {role for _, _, role in DEMO_ACCOUNTS} == {"admin", "supervisor", "operator"}
    assert [(u.username, u.password, u.role) for u in demo.users] == list(DEMO_ACCOUNTS)
    for user in demo.users:
        assert USERNAME.match(user.username)
        assert password_problem(user.password) is None
        assert user.full_name
    operators = [u for u in demo.users if u.role == "operator"]
    assert len(operators) == 2
    assert {u.site_codes for u in operators} == {("LYS",), ("LIL",)}
    assert next(u for u in demo.users if u.role == "supervisor").site_codes == ("LIL", "LYS")


def test_the_promoted_products_are_short_and_wanted_by_many_so_a_run_shares_them(demo):
    """What the demo's dispatch screen is there to show: not enough for everyone, a split to decide."""
    stock = opening_stock(demo, 20261125, TODAY)
    promoted = {product.sku for product in demo.promoted}
    assert len(promoted) == 40
    for site in ("LYS", "LIL"):
        held: Counter[str] = Counter()
        for line in stock:
            if line.site == site:
                held[line.product] += line.quantity
        need: Counter[str] = Counter()
        wanting: defaultdict[str, set[str]] = defaultdict(set)
        for order in demo.orders:
            if order.site_code == site:
                for line in order.lines:
                    need[line.sku] += line.quantity
                    wanting[line.sku].add(order.destination_code)
        shared = [sku for sku in promoted if 0 < held[sku] < need[sku] and len(wanting[sku]) >= 3]
        assert len(shared) >= 20, f"{site}: only {len(shared)} promoted products to share out"
        assert 0.3 <= sum(min(held[s], need[s]) for s in promoted) / sum(need[s] for s in promoted) <= 0.7
