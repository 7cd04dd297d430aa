"""A run's plan: shares per destination become pick tasks per order line, within the stock that exists."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.allocation import Policy, Rounding
from app.domain.allocation.plan import (
    DestinationTerms,
    OpenLine,
    ProductTerms,
    StockAt,
    parts_by_product,
    plan_dispatch,
)

TODAY = date(2026, 11, 29)
DUE = datetime(2026, 11, 29, 12, tzinfo=UTC)


def line(line_id, product, destination, need, priority=2, due_hours=0, order="C-1"):
    return OpenLine(
        line_id, line_id, order, priority, DUE + timedelta(hours=due_hours), 1, product, destination, need
    )


def piece(product, location, available, lot=None, expiry=None, seq=None):
    return StockAt(
        product,
        location,
        f"L{location}",
        "A",
        seq if seq is not None else location,
        lot,
        lot and f"LOT{lot}",
        expiry,
        date(2026, 1, 1),
        available,
    )


def plan(lines, products, destinations, stock, policy=Policy.PROPORTIONAL):
    return plan_dispatch(
        lines,
        products,
        destinations,
        stock,
        policy=policy,
        rounding=Rounding.LARGEST_REMAINDER,
        spill=False,
        today=TODAY,
    )


def test_the_worked_example_becomes_tasks_for_each_order_line():
    products = {1: ProductTerms(1, "WATER", 6, True, False, False)}
    destinations = {
        10: DestinationTerms(10, "A", None, None, None),
        20: DestinationTerms(20, "B", 6, None, None),
        30: DestinationTerms(30, "C", 6, None, None),
        40: DestinationTerms(40, "D", 6, None, None),
    }
    # B has two orders: 30 due first, then 15.
    lines = [
        line(1, 1, 10, 24, priority=1),
        line(2, 1, 20, 30, due_hours=1, order="C-2"),
        line(3, 1, 20, 15, due_hours=5, order="C-3"),
        line(4, 1, 30, 60),
        line(5, 1, 40, 20),
    ]
    result = plan(lines, products, destinations, [piece(1, 1, 72), piece(1, 2, 48)])
    by_line = Counter()
    for task in result.tasks:
        by_line[task.line_id] += task.units
    assert by_line == {1: 24, 2: 30, 3: 6, 4: 48, 5: 12}  # B's 36 serve its earlier order first
    assert result.units_allocated == 120


def test_a_destination_s_units_above_its_lines_needs_go_to_its_last_line():
    products = {1: ProductTerms(1, "WATER", 6, True, False, False)}  # round up to whole packs
    destinations = {10: DestinationTerms(10, "A", None, None, None)}
    lines = [line(1, 1, 10, 4, due_hours=1, order="C-1"), line(2, 1, 10, 4, due_hours=2, order="C-2")]
    result = plan(lines, products, destinations, [piece(1, 1, 60)])
    assert sorted((t.line_id, t.units) for t in result.tasks) == [(1, 4), (2, 8)]  # 8 needed → 2 packs


def test_a_products_safety_stock_is_never_planned():
    products = {1: ProductTerms(1, "WATER", 6, False, False, False, holdback=13)}
    destinations = {10: DestinationTerms(10, "A", None, None, None)}
    result = plan([line(1, 1, 10, 60)], products, destinations, [piece(1, 1, 40), piece(1, 2, 20)])
    assert result.units_allocated == 42  # 60 less 13 kept back: 47, so 7 whole packs
    loose = {1: ProductTerms(1, "WATER", 6, False, True, False, holdback=13)}  # loose units allowed
    assert plan([line(1, 1, 10, 60)], loose, destinations, [piece(1, 1, 60)]).units_allocated == 47


def test_an_expired_lot_is_never_planned():
    products = {1: ProductTerms(1, "YOG", 1, False, False, True)}
    destinations = {10: DestinationTerms(10, "A", None, None, None)}
    stock = [piece(1, 1, 50, lot=1, expiry=TODAY - timedelta(days=1)), piece(1, 2, 5, lot=2, expiry=TODAY)]
    result = plan([line(1, 1, 10, 20)], products, destinations, stock)
    assert [(t.lot_id, t.units) for t in result.tasks] == [(2, 5)]  # good through its expiry day


@st.composite
def scenarios(draw):
    n_products = draw(st.integers(1, 4))
    products = {
        p: ProductTerms(
            p, f"P{p}", draw(st.sampled_from((1, 2, 6, 12))), draw(st.booleans()), False, draw(st.booleans())
        )
        for p in range(1, n_products + 1)
    }
    destinations = {
        d: DestinationTerms(
            d, f"D{d}", draw(st.sampled_from((None, 0, 6))), draw(st.sampled_from((None, 24, 60))), None
        )
        for d in range(1, draw(st.integers(1, 5)) + 1)
    }
    lines, line_id = [], 0
    for p in products:
        for d in destinations:
            for _ in range(draw(st.integers(0, 2))):
                line_id += 1
                lines.append(
                    line(
                        line_id,
                        p,
                        d,
                        draw(st.integers(1, 80)),
                        draw(st.integers(1, 3)),
                        draw(st.integers(0, 9)),
                        f"C-{draw(st.integers(1, 5))}",
                    )
                )
    stock, location = [], 0
    for p, terms in products.items():
        for lot in range(draw(st.integers(0, 3))):
            location += 1
            expiry = TODAY + timedelta(days=draw(st.integers(-3, 30))) if terms.expiry_tracked else None
            stock.append(piece(p, location, draw(st.integers(1, 90)), lot=location * 10 + lot, expiry=expiry))
    return lines, products, destinations, stock


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.sampled_from(list(Policy)), st.randoms(use_true_random=False))
def test_plans_stay_within_stock_match_the_shares_and_ignore_input_order(scenario, policy, rng):
    lines, products, destinations, stock = scenario
    result = plan(lines, products, destinations, stock, policy)
    taken = Counter()
    for task in result.tasks:
        taken[(task.product_id, task.location_id, task.lot_id)] += task.units
        assert task.units > 0
    for s in stock:  # never more than a piece holds, never from an expired lot
        assert taken[(s.product_id, s.location_id, s.lot_id)] <= s.available
        if s.expiry is not None and s.expiry < TODAY:
            assert taken[(s.product_id, s.location_id, s.lot_id)] == 0
    sku_of = {t.sku: p for p, t in products.items()}
    code_of = {d.code: i for i, d in destinations.items()}
    owner = {ln.line_id: (ln.product_id, ln.destination_id) for ln in lines}
    per_destination = Counter()
    for task in result.tasks:
        per_destination[owner[task.line_id]] += task.units
    expected = Counter()
    for allocation in result.allocations:
        for explained in allocation.lines:
            if explained.units:
                expected[(sku_of[allocation.supply.product], code_of[explained.destination_code])] = (
                    explained.units
                )
    assert per_destination == expected  # every unit of every share is placed, on its own destination's lines
    need = {ln.line_id: ln.need for ln in lines}
    per_line = Counter()
    for task in result.tasks:
        per_line[task.line_id] += task.units
    for line_id, units in per_line.items():  # beyond its need only by a rounded-up pack
        assert units < need[line_id] + products[owner[line_id][0]].pack_size
    shuffled_lines, shuffled_stock = lines[:], stock[:]
    rng.shuffle(shuffled_lines)
    rng.shuffle(shuffled_stock)
    again = plan(shuffled_lines, products, destinations, shuffled_stock, policy)
    assert Counter(again.tasks) == Counter(result.tasks)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.sampled_from(list(Policy)), st.integers(1, 12))
def test_a_plan_made_part_by_part_is_the_plan_of_the_whole(scenario, policy, max_lines):
    """A commit plans a large run in parts of whole products, writing each while it plans the next."""
    lines, products, destinations, stock = scenario
    whole = plan(lines, products, destinations, stock, policy)
    parts = parts_by_product(lines, stock, max_lines)
    for part_lines, part_stock in parts:
        assert {ln.product_id for ln in part_lines} >= {s.product_id for s in part_stock}
        assert len(part_lines) >= 1
    for (before, _), (after, _) in pairwise(parts):  # whole products, in order, and a part closes
        last = max(ln.product_id for ln in before)  # with the product that brings it to `max_lines`
        assert len(before) >= max_lines > len([ln for ln in before if ln.product_id != last])
        assert last < min(ln.product_id for ln in after)
    assert sorted(ln for part_lines, _ in parts for ln in part_lines) == sorted(lines)
    wanted = {ln.product_id for ln in lines}
    assert sorted(s for _, part_stock in parts for s in part_stock) == sorted(
        s for s in stock if s.product_id in wanted
    )
    planned = [plan(part_lines, products, destinations, held, policy) for part_lines, held in parts]
    assert Counter(t for p in planned for t in p.tasks) == Counter(whole.tasks)
    by_product = {a.supply.product: a for a in whole.allocations}
    joined = [a for p in planned for a in p.allocations]
    assert len(joined) == len(by_product) and all(by_product[a.supply.product] == a for a in joined)
