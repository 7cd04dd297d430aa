"""Ledger arithmetic: balances follow the movements, and never go below what is reserved."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.ledger import (
    Balance,
    InsufficientStock,
    Movement,
    MovementKind,
    StockKey,
    apply_movements,
    count_difference,
    deltas,
    keys_in_lock_order,
)

A, B = 1, 2  # two locations
KEY_A = StockKey(product_id=7, location_id=A, lot_id=None)
KEY_B = StockKey(product_id=7, location_id=B, lot_id=None)


def transfer(qty, source=A, target=B, lot=None):
    return Movement(MovementKind.TRANSFER, 7, lot, source, target, qty)


def receipt(qty, target=A, lot=None):
    return Movement(MovementKind.RECEIPT, 7, lot, None, target, qty)


def test_a_receipt_adds_to_the_location():
    assert apply_movements({}, [receipt(5)]) == {KEY_A: Balance(5, 0)}


def test_a_transfer_moves_stock_between_locations():
    result = apply_movements({KEY_A: Balance(10)}, [transfer(4)])
    assert result == {KEY_A: Balance(6), KEY_B: Balance(4)}


def test_taking_more_than_available_is_refused_with_the_facts():
    with pytest.raises(InsufficientStock) as refused:
        apply_movements({KEY_A: Balance(4)}, [transfer(6)])
    assert (refused.value.key, refused.value.available, refused.value.requested) == (KEY_A, 4, 6)


def test_reserved_stock_cannot_be_moved_away():
    with pytest.raises(InsufficientStock) as refused:
        apply_movements({KEY_A: Balance(10, reserved=8)}, [transfer(3)])
    assert refused.value.available == 2


def test_a_pick_consumes_its_reservation():
    pick = Movement(MovementKind.PICK, 7, None, A, B, 8)
    assert apply_movements({KEY_A: Balance(10, reserved=8)}, [pick])[KEY_A] == Balance(2, 0)


def test_a_movement_must_move_something_somewhere():
    with pytest.raises(ValueError, match="positive"):
        transfer(0)
    with pytest.raises(ValueError, match="somewhere"):
        transfer(1, source=A, target=A)
    with pytest.raises(ValueError, match="source or a destination"):
        Movement(MovementKind.ADJUSTMENT, 7, None, None, None, 1)


def test_a_count_that_agrees_needs_no_correction():
    assert count_difference(KEY_A, 12, 12) is None


def test_a_count_below_the_record_takes_the_difference_out():
    correction = count_difference(KEY_A, 12, 9)
    assert (correction.from_location_id, correction.to_location_id, correction.quantity) == (A, None, 3)


def test_a_count_above_the_record_puts_the_difference_in():
    correction = count_difference(KEY_A, 12, 15)
    assert (correction.from_location_id, correction.to_location_id, correction.quantity) == (None, A, 3)


def test_keys_are_locked_in_one_global_order():
    keys = keys_in_lock_order([transfer(1, source=B, target=A), receipt(1, target=B, lot=3)])
    assert keys == sorted(keys, key=StockKey.sort_key)
    assert len(keys) == 3


LOCATIONS = st.integers(min_value=1, max_value=4)
LOTS = st.sampled_from([None, 1, 2])


@st.composite
def movements(draw):
    kind = draw(st.sampled_from([MovementKind.RECEIPT, MovementKind.TRANSFER, MovementKind.ADJUSTMENT]))
    lot = draw(LOTS)
    qty = draw(st.integers(min_value=1, max_value=50))
    if kind is MovementKind.RECEIPT:
        return Movement(kind, 7, lot, None, draw(LOCATIONS), qty)
    source = draw(LOCATIONS)
    if kind is MovementKind.ADJUSTMENT:
        return (
            Movement(kind, 7, lot, source, None, qty)
            if draw(st.booleans())
            else Movement(kind, 7, lot, None, source, qty)
        )
    target = draw(LOCATIONS.filter(lambda x: x != source))
    return Movement(kind, 7, lot, source, target, qty)


@given(st.lists(movements(), max_size=60))
def test_balances_never_go_negative_and_always_equal_the_sum_of_the_ledger(sequence):
    balances: dict[StockKey, Balance] = {}
    accepted: list[Movement] = []
    for movement in sequence:
        try:
            balances |= apply_movements(balances, [movement])
            accepted.append(movement)
        except InsufficientStock:
            pass  # refused: nothing changes
    ledger = deltas(accepted)
    for key, balance in balances.items():
        assert balance.on_hand >= 0
        assert 0 <= balance.reserved <= balance.on_hand
        assert balance.on_hand == ledger.get(key, 0)


@given(
    st.lists(movements(), min_size=1, max_size=10),
    st.dictionaries(st.builds(StockKey, st.just(7), LOCATIONS, LOTS), st.integers(0, 100)),
)
def test_a_batch_applies_all_or_nothing(batch, start):
    balances = {key: Balance(qty) for key, qty in start.items()}
    try:
        result = apply_movements(balances, batch)
    except InsufficientStock:
        return
    for key, delta in deltas(batch).items():
        assert result[key].on_hand == balances.get(key, Balance()).on_hand + delta


@given(st.integers(0, 1000), st.integers(0, 1000))
def test_a_count_correction_brings_the_record_to_the_count(on_hand, counted):
    correction = count_difference(KEY_A, on_hand, counted)
    after = (
        apply_movements({KEY_A: Balance(on_hand)}, [correction])[KEY_A] if correction else Balance(on_hand)
    )
    assert after.on_hand == counted
