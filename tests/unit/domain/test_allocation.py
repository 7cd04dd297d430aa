"""Allocation when stock is short (PRODUCT.md): tiers, policies, pack rounding, and their explanation."""

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.allocation import (
    Demand,
    Policy,
    ProductRequest,
    Reason,
    Rounding,
    Shortage,
    Supply,
    allocate,
    allocate_product,
)
from app.domain.allocation.quantities import minimum_packs, pack_cap

# The worked example of PRODUCT.md: 120 units in packs of 6, round-up allowed, min 1 pack each.
WORKED_SUPPLY = Supply("SKU-1", pack_size=6, available_units=120, round_up=True)
WORKED = (
    Demand("A", tier=1, need_units=24, min_units=6),
    Demand("B", tier=2, need_units=45, min_units=6),
    Demand("C", tier=2, need_units=60, min_units=6),
    Demand("D", tier=2, need_units=20, min_units=6),
)


def packs(supply, demands, **rules):
    return allocate_product(supply, demands, **rules).packs_by_destination()


def line(allocation, code):
    return next(line for line in allocation.lines if line.destination_code == code)


# The worked example


def test_the_worked_example_serves_tier_one_then_splits_tier_two_by_need():
    assert packs(WORKED_SUPPLY, WORKED) == {"A": 4, "B": 6, "C": 8, "D": 2}


def test_the_worked_example_explains_quotas_and_the_two_remainders():
    allocation = allocate_product(WORKED_SUPPLY, WORKED)
    a, b, c, d = (line(allocation, code) for code in "ABCD")
    assert (a.quota, a.rounding_step, a.packs, a.reason) == (4, 0, 4, Reason.SERVED_IN_FULL)
    assert (b.quota, c.quota, d.quota) == (Fraction("5.76"), Fraction("7.68"), Fraction("2.56"))
    assert (b.rounding_step, c.rounding_step, d.rounding_step) == (1, 1, 0)
    assert (b.reason, c.reason, d.reason) == (
        Reason.REMAINDER_PLUS_ONE,
        Reason.REMAINDER_PLUS_ONE,
        Reason.PROPORTIONAL_SHARE,
    )
    assert (b.tier, b.need_units, b.min_units, b.max_units) == (2, 45, 6, None)
    assert (b.cap_packs, c.cap_packs, d.cap_packs) == (8, 10, 4)
    assert (b.fill_rate, c.fill_rate, d.fill_rate) == (Fraction(36, 45), Fraction(48, 60), Fraction(12, 20))
    assert allocation.shortages == (
        Shortage("SKU-1", "C", 12),
        Shortage("SKU-1", "B", 9),
        Shortage("SKU-1", "D", 8),
    )


def test_the_worked_example_under_minimums_first():
    assert packs(WORKED_SUPPLY, WORKED, policy=Policy.MINIMUMS_FIRST) == {"A": 4, "B": 6, "C": 7, "D": 3}


def test_the_worked_example_rounds_the_same_by_sainte_lague():
    assert packs(WORKED_SUPPLY, WORKED, rounding=Rounding.SAINTE_LAGUE) == {"A": 4, "B": 6, "C": 8, "D": 2}


# Caps, tiers and minimums


def test_the_cap_rounds_the_need_up_only_when_the_product_allows_it():
    assert pack_cap(45, None, 6, round_up=True) == 8
    assert pack_cap(45, None, 6, round_up=False) == 7
    assert pack_cap(60, 40, 6, round_up=True) == 6  # the maximum, in whole packs
    assert minimum_packs(7, cap=10, pack_size=6) == 2
    assert minimum_packs(30, cap=3, pack_size=6) == 3  # never above the cap


def test_a_destination_capped_by_its_maximum_says_so():
    allocation = allocate_product(Supply("S", 1, 100), [Demand("A", 1, 50, max_units=10), Demand("B", 1, 80)])
    assert allocation.packs_by_destination() == {"A": 10, "B": 80}
    assert line(allocation, "A").reason is Reason.CAPPED_BY_MAX


def test_without_round_up_a_need_below_a_pack_gets_nothing_and_says_why():
    allocation = allocate_product(Supply("S", 6, 60), [Demand("A", 1, 20)])
    assert (line(allocation, "A").packs, line(allocation, "A").reason) == (3, Reason.WHOLE_PACKS_ONLY)


def test_lower_tiers_get_nothing_once_a_tier_is_split():
    allocation = allocate_product(
        Supply("S", 1, 10), [Demand("A", 1, 8), Demand("B", 1, 8), Demand("C", 2, 5)]
    )
    assert allocation.packs_by_destination() == {"A": 5, "B": 5, "C": 0}
    assert line(allocation, "C").reason is Reason.TIER_NOT_SERVED


def test_tiers_that_fit_get_their_caps_and_pass_the_rest_down():
    demands = [Demand("A", 1, 3), Demand("B", 2, 4), Demand("C", 3, 10), Demand("D", 3, 10)]
    assert packs(Supply("S", 1, 15), demands) == {"A": 3, "B": 4, "C": 4, "D": 4}


def test_minimums_that_do_not_fit_go_whole_in_priority_order():
    demands = [
        Demand("A", 1, 30, min_units=12),
        Demand("B", 1, 40, min_units=12),
        Demand("C", 1, 20, min_units=12),
    ]
    allocation = allocate_product(Supply("S", 6, 30), demands)
    assert allocation.packs_by_destination() == {"B": 2, "A": 2, "C": 1}
    assert [line.reason for line in allocation.lines] == [
        Reason.MINIMUM_GRANTED,
        Reason.MINIMUM_GRANTED,
        Reason.MINIMUM_PARTIAL,
    ]


def test_a_minimum_lifts_a_small_share():
    allocation = allocate_product(Supply("S", 1, 20), [Demand("A", 1, 95), Demand("B", 1, 5, min_units=4)])
    assert allocation.packs_by_destination() == {"A": 16, "B": 4}
    assert line(allocation, "B").reason is Reason.MINIMUM_GRANTED


def test_equal_remainders_go_to_the_larger_need_then_the_destination_code():
    demands = [Demand("B", 1, 10, weight=1), Demand("A", 1, 10, weight=1), Demand("C", 1, 12, weight=1)]
    assert packs(Supply("S", 1, 4), demands) == {"C": 2, "A": 1, "B": 1}


# Policies


def test_the_quota_policy_splits_by_percent():
    demands = [Demand(code, 1, 100, quota_percent=pct) for code, pct in (("A", 50), ("B", 30), ("C", 20))]
    assert packs(Supply("S", 1, 10), demands, policy=Policy.QUOTA) == {"A": 5, "B": 3, "C": 2}


def test_quota_percents_may_be_fractions():
    third = Fraction(100, 3)
    demands = [Demand(code, 1, 100, quota_percent=third) for code in "ABC"]
    assert packs(Supply("S", 1, 9), demands, policy=Policy.QUOTA) == {"A": 3, "B": 3, "C": 3}


def test_an_even_split_hands_what_a_cap_leaves_to_the_others():
    demands = [Demand("A", 1, 1), Demand("B", 1, 50), Demand("C", 1, 40)]
    assert packs(Supply("S", 1, 9), demands, policy=Policy.EVEN) == {"A": 1, "B": 4, "C": 4}


def test_strict_priority_grants_minimums_then_serves_in_priority_order():
    demands = [Demand("A", 1, 10), Demand("B", 1, 8, min_units=2), Demand("C", 1, 6)]
    allocation = allocate_product(Supply("S", 1, 12), demands, policy=Policy.STRICT_PRIORITY)
    assert allocation.packs_by_destination() == {"A": 10, "B": 2, "C": 0}
    assert [line.reason for line in allocation.lines] == [
        Reason.SERVED_IN_FULL,
        Reason.MINIMUM_GRANTED,
        Reason.PACKS_RAN_OUT,
    ]


# Spill


SPILL_CASE = (
    Demand("A", 1, 60, max_units=12),  # share 3⅓ packs, capped at 2
    Demand("B", 1, 120),
    Demand("C", 2, 30),
)


def test_without_spill_a_capped_share_goes_to_the_tier_mates():
    assert packs(Supply("S", 6, 60), SPILL_CASE) == {"A": 2, "B": 8, "C": 0}


def test_spill_hands_whole_packs_left_by_caps_to_the_next_tier():
    assert packs(Supply("S", 6, 60), SPILL_CASE, spill=True) == {"A": 2, "B": 7, "C": 1}


def test_spill_keeps_in_the_tier_what_lower_tiers_cannot_take():
    demands = (Demand("A", 1, 600, max_units=6), Demand("B", 1, 120), Demand("C", 2, 6))
    # A's share is 11⅔ packs, 10⅔ above its cap: C can take one, B keeps the rest
    assert packs(Supply("S", 6, 84), demands, spill=True) == {"A": 1, "B": 12, "C": 1}


# Supply


def test_nothing_to_hand_out_is_explained_as_no_stock():
    allocation = allocate_product(Supply("S", 6, 5), [Demand("A", 1, 12)])
    assert (line(allocation, "A").packs, line(allocation, "A").reason) == (0, Reason.NO_STOCK)


def test_the_holdback_stays_in_stock():
    assert packs(Supply("S", 6, 60, holdback=13), [Demand("A", 1, 60)]) == {"A": 7}


def test_loose_units_go_as_eaches_only_when_the_product_allows_them():
    demands = [Demand("A", 1, 20), Demand("B", 2, 20)]
    assert allocate_product(Supply("S", 6, 23), demands).units_by_destination() == {"A": 18, "B": 0}
    allocation = allocate_product(Supply("S", 6, 23, allow_eaches=True), demands)
    # A is served in full (3 packs and 2 eaches), so tier 2 may have the last 3 units
    assert allocation.units_by_destination() == {"A": 20, "B": 3}
    assert (line(allocation, "A").eaches, line(allocation, "A").reason) == (2, Reason.SERVED_IN_FULL)


def test_sainte_lague_never_takes_a_pack_away_when_supply_grows():
    demands = [Demand("A", 1, 9), Demand("B", 1, 9), Demand("C", 1, 7)]
    # largest remainder shows the Alabama paradox here: C loses a pack when supply grows by one
    assert packs(Supply("S", 1, 12), demands)["C"] == 4
    assert packs(Supply("S", 1, 13), demands)["C"] == 3
    by_divisor = [packs(Supply("S", 1, units), demands, rounding=Rounding.SAINTE_LAGUE) for units in (12, 13)]
    assert by_divisor == [{"A": 5, "B": 4, "C": 3}, {"A": 5, "B": 5, "C": 3}]


# The batch


def test_a_batch_comes_back_in_product_order():
    requests = [
        ProductRequest(Supply("SKU-2", 1, 5), (Demand("A", 1, 10),)),
        ProductRequest(Supply("SKU-1", 1, 5), (Demand("A", 1, 3),)),
    ]
    result = allocate(requests)
    assert [(r.supply.product, r.packs_allocated) for r in result] == [("SKU-1", 3), ("SKU-2", 5)]


def test_a_product_or_a_destination_twice_is_refused():
    with pytest.raises(ValueError, match="one request per product"):
        allocate([ProductRequest(Supply("S", 1, 5), ()), ProductRequest(Supply("S", 1, 5), ())])
    with pytest.raises(ValueError, match="one demand per destination"):
        allocate_product(Supply("S", 1, 5), [Demand("A", 1, 3), Demand("A", 2, 4)])


def test_impossible_inputs_are_refused():
    with pytest.raises(ValueError, match="pack"):
        Supply("S", 0, 5)
    with pytest.raises(ValueError, match="negative"):
        Demand("A", 1, -1)


# Invariants, for every input

RULES = st.tuples(st.sampled_from(Policy), st.sampled_from(Rounding), st.booleans())


@st.composite
def products(draw, tiers=3):
    pack = draw(st.integers(1, 12))
    codes = draw(st.lists(st.sampled_from("ABCDEFGHJK"), min_size=1, max_size=8, unique=True))
    optional = st.none() | st.integers(0, 60)
    demands = [
        Demand(
            code,
            tier=draw(st.integers(1, tiers)),
            need_units=draw(st.integers(0, 120)),
            min_units=draw(optional),
            max_units=draw(st.none() | st.integers(0, 150)),
            weight=draw(st.none() | st.integers(0, 9)),
            quota_percent=draw(st.none() | st.integers(0, 60)),
        )
        for code in codes
    ]
    supply = Supply(
        "SKU",
        pack,
        draw(st.integers(0, 500)),
        round_up=draw(st.booleans()),
        allow_eaches=draw(st.booleans()),
        holdback=draw(st.integers(0, 12)),
    )
    return supply, demands


def caps_and_minimums(supply, demands):
    p = supply.pack_size
    caps = {}
    for d in demands:
        cap = -(-d.need_units // p) if supply.round_up else d.need_units // p
        caps[d.destination_code] = cap if d.max_units is None else min(cap, d.max_units // p)
    lows = {d.destination_code: min(-(-(d.min_units or 0) // p), caps[d.destination_code]) for d in demands}
    return caps, lows


def by_tier(demands):
    tiers = {}
    for d in demands:
        tiers.setdefault(d.tier, []).append(d.destination_code)
    return [tiers[t] for t in sorted(tiers)]


@given(products(), RULES)
def test_everything_is_handed_out_up_to_the_caps(case, rules):
    supply, demands = case
    policy, rounding, spill = rules
    result = allocate_product(supply, demands, policy=policy, rounding=rounding, spill=spill)
    caps, _ = caps_and_minimums(supply, demands)
    assert result.packs_allocated == min(supply.packs, sum(caps.values()))
    assert all(line.packs <= caps[line.destination_code] for line in result.lines)
    assert all(line.packs >= 0 and line.eaches >= 0 for line in result.lines)
    assert sum(line.units for line in result.lines) <= supply.distributable_units


@given(products(), RULES)
def test_nobody_is_below_their_minimum_when_the_minimums_fit(case, rules):
    supply, demands = case
    policy, rounding, spill = rules
    got = packs(supply, demands, policy=policy, rounding=rounding, spill=spill)
    caps, lows = caps_and_minimums(supply, demands)
    left = supply.packs
    for tier in by_tier(demands):
        if sum(lows[code] for code in tier) <= left:
            assert all(got[code] >= lows[code] for code in tier)
        if sum(caps[code] for code in tier) > left:
            break  # the split tier: what comes below depends on spill
        left -= sum(caps[code] for code in tier)


@given(products(), st.sampled_from(Policy), st.sampled_from(Rounding))
def test_no_lower_tier_is_served_while_a_higher_tier_is_short(case, policy, rounding):
    supply, demands = case
    got = packs(supply, demands, policy=policy, rounding=rounding)
    caps, _ = caps_and_minimums(supply, demands)
    tiers = by_tier(demands)
    for higher, tier in enumerate(tiers):
        if any(got[code] for code in tier):
            assert all(got[code] == caps[code] for above in tiers[:higher] for code in above)


@given(products(), RULES, st.randoms(use_true_random=False))
def test_the_same_input_in_any_order_gives_the_same_allocation(case, rules, rng):
    supply, demands = case
    policy, rounding, spill = rules
    shuffled = list(demands)
    rng.shuffle(shuffled)
    first = allocate_product(supply, demands, policy=policy, rounding=rounding, spill=spill)
    assert allocate_product(supply, shuffled, policy=policy, rounding=rounding, spill=spill) == first


@given(products(), st.sampled_from(Policy), st.integers(1, 30))
def test_sainte_lague_never_gives_less_when_supply_grows(case, policy, more_packs):
    supply, demands = case
    before = packs(supply, demands, policy=policy, rounding=Rounding.SAINTE_LAGUE)
    grown = replace(supply, available_units=supply.available_units + more_packs * supply.pack_size)
    after = packs(grown, demands, policy=policy, rounding=Rounding.SAINTE_LAGUE)
    assert all(after[code] >= before[code] for code in before)


def greedy_reference(supply, demands):
    """Pack by pack: to the first destination below its minimum in the highest tier not yet full,
    else to the first one below its cap there, in priority order."""
    caps, lows = caps_and_minimums(supply, demands)
    order = sorted(demands, key=lambda d: (d.tier, -d.need_units, d.destination_code))
    got = dict.fromkeys(caps, 0)
    for _ in range(supply.packs):
        hungry = [d for d in order if got[d.destination_code] < caps[d.destination_code]]
        if not hungry:
            break
        tier = [d.destination_code for d in hungry if d.tier == hungry[0].tier]
        below_minimum = [code for code in tier if got[code] < lows[code]]
        got[(below_minimum or tier)[0]] += 1
    return got


@given(products(), st.sampled_from(Rounding))
def test_strict_priority_is_the_greedy_pack_by_pack(case, rounding):
    supply, demands = case
    got = packs(supply, demands, policy=Policy.STRICT_PRIORITY, rounding=rounding)
    assert got == greedy_reference(supply, demands)


def seat_by_seat_reference(supply, demands):
    """Sainte-Laguë as in the textbook, in one tier: from the minimums, each next pack to the highest
    weight / (2·packs + 1) below its cap (ties in priority order; unweighted destinations last)."""
    caps, lows = caps_and_minimums(supply, demands)
    order = sorted(demands, key=lambda d: (-d.need_units, d.destination_code))
    got = dict(lows)
    for _ in range(supply.packs - sum(lows.values())):
        open_ = [d for d in order if got[d.destination_code] < caps[d.destination_code]]
        if not open_:
            break

        def place(d):
            weight = d.need_units if d.weight is None else d.weight
            seat = Fraction(2 * got[d.destination_code] + 1, 2 * max(weight, 1))
            return (weight == 0, seat)

        got[min(open_, key=place).destination_code] += 1
    return got


@given(products(tiers=1))
def test_sainte_lague_is_the_textbook_divisor_method(case):
    supply, demands = case
    _, lows = caps_and_minimums(supply, demands)
    if sum(lows.values()) <= supply.packs:
        assert packs(supply, demands, rounding=Rounding.SAINTE_LAGUE) == seat_by_seat_reference(
            supply, demands
        )


@given(products(tiers=1), st.sampled_from([Policy.PROPORTIONAL, Policy.EVEN, Policy.QUOTA]))
def test_quotas_are_one_water_level_and_round_within_one_pack(case, policy):
    supply, demands = case
    caps, lows = caps_and_minimums(supply, demands)
    result = allocate_product(supply, demands, policy=policy)
    if not sum(lows.values()) <= supply.packs < sum(caps.values()):
        return
    assert sum(line.quota for line in result.lines) == supply.packs
    levels = set()
    for line in result.lines:
        assert line.quota_numerator // line.quota_denominator <= line.packs < line.quota + 1
        assert lows[line.destination_code] <= line.quota <= caps[line.destination_code]
        d = line.demand
        weight = {
            Policy.PROPORTIONAL: d.need_units if d.weight is None else d.weight,
            Policy.EVEN: 1,
            Policy.QUOTA: d.quota_percent or 0,
        }[policy]
        if weight and lows[d.destination_code] < line.quota < caps[d.destination_code]:
            levels.add(line.quota / weight)
    assert len(levels) <= 1


@settings(max_examples=50)
@given(st.lists(products(), min_size=1, max_size=5), RULES)
def test_a_batch_is_each_product_on_its_own(cases, rules):
    policy, rounding, spill = rules
    requests = [
        ProductRequest(Supply(f"SKU-{i}", s.pack_size, s.available_units, s.round_up), tuple(d))
        for i, (s, d) in enumerate(cases)
    ]
    result = allocate(reversed(requests), policy=policy, rounding=rounding, spill=spill)
    for request, allocation in zip(requests, result, strict=True):
        alone = allocate_product(
            request.supply, request.demands, policy=policy, rounding=rounding, spill=spill
        )
        assert allocation == alone


@given(products(), RULES)
def test_the_reason_agrees_with_the_numbers(case, rules):
    supply, demands = case
    policy, rounding, spill = rules
    result = allocate_product(supply, demands, policy=policy, rounding=rounding, spill=spill)
    for line in result.lines:
        served = line.units >= line.need_units
        assert (line.reason in (Reason.SERVED_IN_FULL, Reason.NOTHING_NEEDED)) == served
        assert line.shortage_units == max(line.need_units - line.units, 0)
        if line.reason is Reason.REMAINDER_PLUS_ONE:
            assert line.rounding_step == 1
        if line.reason in (Reason.TIER_NOT_SERVED, Reason.NO_STOCK, Reason.PACKS_RAN_OUT):
            assert line.packs == 0
    assert sum(s.units for s in result.shortages) == sum(line.shortage_units for line in result.lines)
