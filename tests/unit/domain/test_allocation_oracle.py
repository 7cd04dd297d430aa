"""The engine gives exactly what it gave before its speed work: same packs, quotas, reasons, even types.

`reference_allocation.py` is the engine as it was (a frozen copy); every input here goes through both.
"""

import random
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.allocation import Demand, Policy, ProductRequest, Rounding, Supply, allocate, allocate_product
from bench.allocation import make_batch
from tests.unit.domain import reference_allocation as reference
from tests.unit.domain.test_allocation import RULES, products

ALL_RULES = [(p, r, spill) for p in Policy for r in Rounding for spill in (False, True)]


def assert_same(got, want):
    """Equal, and built of the same types (an int where an int was, not an equal Fraction or bool)."""
    assert got == want
    for ours, theirs in zip(got, want, strict=True):
        assert ours.supply is theirs.supply
        assert type(ours.lines) is type(theirs.lines)
        for line, old in zip(ours.lines, theirs.lines, strict=True):
            assert type(line) is type(old)
            assert line.demand is old.demand
            assert [type(value) for value in line] == [type(value) for value in old]


@st.composite
def wide_products(draw):
    """More destinations and tiers than the invariant tests, fractional weights and quotas, ties."""
    pack = draw(st.sampled_from((1, 1, 2, 3, 6, 12, 24)))
    count = draw(st.integers(1, 20))
    codes = [f"D{i:02d}" for i in range(count)]
    amount = st.integers(0, 400)
    weight = st.none() | st.integers(0, 20) | st.fractions(0, 20, max_denominator=12)
    demands = [
        Demand(
            code,
            tier=draw(st.integers(1, 4)),
            need_units=draw(st.sampled_from((0, 12, 24, 60)) | amount),
            min_units=draw(st.none() | st.integers(0, 80)),
            max_units=draw(st.none() | amount),
            weight=draw(weight),
            quota_percent=draw(st.none() | st.integers(0, 100) | st.fractions(0, 100, max_denominator=7)),
        )
        for code in codes
    ]
    supply = Supply(
        "SKU",
        pack,
        draw(st.integers(0, 4000)),
        round_up=draw(st.booleans()),
        allow_eaches=draw(st.booleans()),
        holdback=draw(st.integers(0, 30)),
    )
    return supply, demands


def both(supply, demands, rules):
    policy, rounding, spill = rules
    rules_ = {"policy": policy, "rounding": rounding, "spill": spill}
    return (
        [allocate_product(supply, demands, **rules_)],
        [reference.allocate_product(supply, demands, **rules_)],
    )


@settings(max_examples=200)
@given(products(), RULES)
def test_small_products_allocate_as_before(case, rules):
    assert_same(*both(*case, rules))


@settings(max_examples=60, deadline=None)
@given(wide_products(), RULES)
def test_wide_products_allocate_as_before(case, rules):
    assert_same(*both(*case, rules))


@settings(max_examples=15, deadline=None)
@given(st.lists(wide_products(), min_size=1, max_size=4), RULES, st.randoms(use_true_random=False))
def test_a_shuffled_batch_allocates_as_before(cases, rules, rng):
    policy, rounding, spill = rules
    requests = [ProductRequest(replace(s, product=f"SKU-{i}"), tuple(d)) for i, (s, d) in enumerate(cases)]
    rng.shuffle(requests)
    got = allocate(requests, policy=policy, rounding=rounding, spill=spill)
    assert_same(got, reference.allocate(requests, policy=policy, rounding=rounding, spill=spill))


def random_product(rng, number):
    """Like `wide_products`, from a seeded generator: many cases for little time."""
    pack = rng.choice((1, 1, 2, 3, 6, 12, 24))

    def maybe(value):
        return value if rng.random() < 0.4 else None

    def amount(top):
        return rng.choice((0, pack, 12, 60, rng.randint(0, top), rng.randint(0, top), rng.randint(0, top)))

    def fraction(top):
        return (
            Fraction(rng.randint(0, top * 6), rng.randint(1, 6))
            if rng.random() < 0.3
            else rng.randint(0, top)
        )

    demands = [
        Demand(
            f"D{i:02d}",
            tier=rng.randint(1, 4),
            need_units=amount(400),
            min_units=maybe(amount(80)),
            max_units=maybe(amount(400)),
            weight=maybe(fraction(20)),
            quota_percent=maybe(fraction(100)),
        )
        for i in rng.sample(range(60), rng.randint(1, 25))
    ]
    supply = Supply(
        f"SKU{number:04d}",
        pack,
        int(sum(d.need_units for d in demands) * rng.uniform(0.2, 1.2))
        if rng.random() < 0.8
        else rng.randint(0, 200),
        round_up=rng.random() < 0.5,
        allow_eaches=rng.random() < 0.3,
        holdback=rng.choice((0, 0, pack, rng.randint(0, 30))),
    )
    return ProductRequest(supply, tuple(demands))


@pytest.mark.parametrize("seed", range(4))
def test_seeded_random_products_allocate_as_before_under_every_rule(seed):
    rng = random.Random(seed)
    batch = [random_product(rng, number) for number in range(150)]
    for policy, rounding, spill in ALL_RULES:
        got = allocate(batch, policy=policy, rounding=rounding, spill=spill)
        assert_same(got, reference.allocate(batch, policy=policy, rounding=rounding, spill=spill))


@pytest.mark.parametrize("seed", [1, 2026])
def test_the_bench_batch_allocates_as_before_under_every_rule(seed):
    batch = make_batch(seed, lines=1500, products=300, destinations=40)
    for policy, rounding, spill in ALL_RULES:
        got = allocate(batch, policy=policy, rounding=rounding, spill=spill)
        assert_same(got, reference.allocate(batch, policy=policy, rounding=rounding, spill=spill))


def test_the_worked_example_allocates_as_before_under_every_rule():
    supply = Supply("SKU-1", pack_size=6, available_units=120, round_up=True)
    demands = [
        Demand("A", 1, 24, min_units=6),
        Demand("B", 2, 45, min_units=6, weight=Fraction(3, 2)),
        Demand("C", 2, 60, min_units=6, quota_percent=Fraction(100, 3)),
        Demand("D", 2, 20, min_units=6),
    ]
    for rules in ALL_RULES:
        assert_same(*both(supply, demands, rules))
