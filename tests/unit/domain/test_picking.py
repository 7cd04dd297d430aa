"""Picking rules: each wrong scan is caught for its own reason, in walking order; tasks are walked the same
way whatever order they come in."""

from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.picking import (
    PickProblem,
    PickScan,
    PickTarget,
    Scanned,
    Step,
    check_pick,
    is_expired,
    next_step,
    settle,
    stops,
    walking_order,
)

TODAY = date(2026, 11, 25)
YOGHURT = PickTarget(7, "B-01-01", 3, "SKU-YOG", "L1", date(2026, 12, 31), 12)
FLOUR = PickTarget(5, "A-01-01", 4, "SKU-FLOUR", None, None, 20)
HERE, THERE = Scanned("LOC-LYS-B-01-01", 7), Scanned("A-01-02", 6)
YOG, WATER = Scanned("SKU-YOG", 3), Scanned("SKU-WATER", 1)


def test_the_right_location_product_lot_and_quantity_pass():
    assert check_pick(YOGHURT, PickScan(HERE, YOG, "L1", 12), TODAY) is None


def test_a_wrong_location_is_caught_first():
    assert check_pick(YOGHURT, PickScan(THERE, WATER, "L9", 99), TODAY) is PickProblem.WRONG_LOCATION


def test_an_unknown_location_is_a_wrong_location():
    assert check_pick(YOGHURT, PickScan(Scanned("Z-99", None)), TODAY) is PickProblem.WRONG_LOCATION


def test_a_wrong_product_comes_before_its_lot():
    assert check_pick(YOGHURT, PickScan(HERE, WATER, "L9"), TODAY) is PickProblem.WRONG_PRODUCT


def test_a_lot_tracked_task_needs_its_lot():
    assert check_pick(YOGHURT, PickScan(HERE, YOG), TODAY) is PickProblem.LOT_MISSING
    assert check_pick(YOGHURT, PickScan(HERE, YOG, "L2"), TODAY) is PickProblem.WRONG_LOT


def test_an_expired_lot_is_never_picked_even_the_tasks_own():
    after = date(2027, 1, 1)
    assert check_pick(YOGHURT, PickScan(HERE, YOG, "L1", 12), after) is PickProblem.EXPIRED_LOT
    assert check_pick(YOGHURT, PickScan(HERE, YOG, "L1", 12), date(2026, 12, 31)) is None  # its last day


def test_more_than_the_task_is_refused_less_is_a_short_pick():
    assert check_pick(FLOUR, PickScan(Scanned("A-01-01", 5), Scanned("SKU-FLOUR", 4), None, 21), TODAY) is (
        PickProblem.TOO_MANY
    )
    assert (
        check_pick(FLOUR, PickScan(Scanned("A-01-01", 5), Scanned("SKU-FLOUR", 4), None, 19), TODAY) is None
    )


def test_nothing_found_needs_only_the_location():
    assert check_pick(YOGHURT, PickScan(HERE, None, None, 0), TODAY) is None
    assert (
        check_pick(YOGHURT, PickScan(HERE, WATER, None, 0), TODAY) is None
    )  # nothing taken: nothing to check
    assert check_pick(YOGHURT, PickScan(THERE, None, None, 0), TODAY) is PickProblem.WRONG_LOCATION


def test_a_product_without_lots_ignores_lot_checks():
    assert check_pick(FLOUR, PickScan(Scanned("A", 5), Scanned("SKU-FLOUR", 4), "ANY", 20), TODAY) is None


@given(st.integers(1, 10_000), st.data())
def test_a_settled_task_adds_up_to_its_quantity(quantity, data):
    picked = data.draw(st.integers(0, quantity))
    outcome = settle(quantity, picked)
    assert outcome.picked + outcome.short == quantity
    assert outcome.status == ("picked" if picked == quantity else "short")


def test_settling_outside_the_task_is_a_programming_error():
    with pytest.raises(ValueError, match="between 0"):
        settle(5, 6)
    with pytest.raises(ValueError, match="positive"):
        settle(0, 0)


@given(st.dates(), st.dates())
def test_a_lot_is_good_through_its_expiry_day(expiry, today):
    assert is_expired(expiry, today) is (expiry < today)
    assert is_expired(None, today) is False


steps = st.builds(
    Step,
    task_id=st.integers(1, 10_000),
    pick_seq=st.integers(0, 50),
    location=st.sampled_from(["A-01-01", "A-01-02", "B-01-01"]),
    sku=st.sampled_from(["SKU-A", "SKU-B"]),
    lot=st.none() | st.sampled_from(["L1", "L2"]),
    expiry=st.none() | st.dates(),
)


@given(st.lists(steps, unique_by=lambda s: s.task_id, max_size=30), st.randoms())
def test_the_walking_order_does_not_depend_on_the_order_tasks_come_in(tasks, rng):
    shuffled = list(tasks)
    rng.shuffle(shuffled)
    ordered = walking_order(shuffled)
    assert ordered == walking_order(tasks)
    assert [s.pick_seq for s in ordered] == sorted(s.pick_seq for s in tasks)


@given(st.lists(steps, unique_by=lambda s: s.task_id, max_size=30))
def test_stops_group_each_location_once_in_walking_order(tasks):
    grouped = stops(tasks)
    assert [s for _, members in grouped for s in members] == walking_order(tasks)
    for location, members in grouped:
        assert {m.location for m in members} == {location}
    assert all(a[0] != b[0] for a, b in pairwise(grouped))


def test_at_one_location_the_soonest_expiry_goes_first_and_the_next_step_skips_what_is_done():
    late = Step(1, 10, "A-01-01", "SKU-A", "L2", date(2027, 3, 1))
    soon = Step(2, 10, "A-01-01", "SKU-A", "L1", date(2027, 1, 1))
    further = Step(3, 20, "A-01-02", "SKU-A")
    assert walking_order([further, late, soon]) == [soon, late, further]
    assert next_step([further, late, soon], done=[2]) == late
    assert next_step([further, late, soon], done=[1, 2, 3]) is None
