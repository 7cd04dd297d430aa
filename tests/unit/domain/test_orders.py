"""The order state machine: who may move an order where, and where the work on its lines puts it."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.orders import (
    CANCELLABLE,
    FINAL,
    LineProgress,
    OrderState,
    TransitionRefused,
    check_cancel,
    check_edit,
    check_hold,
    check_release,
    is_late,
    order_number,
    progress_state,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
states = st.sampled_from(list(OrderState))
units = st.integers(min_value=0, max_value=10_000)


@st.composite
def lines(draw, *, picked=units):
    quantity = draw(st.integers(min_value=1, max_value=10_000))
    return LineProgress(quantity, draw(units), draw(picked), draw(units))


def test_only_a_draft_can_be_released():
    assert check_release(OrderState.DRAFT) is OrderState.RELEASED
    for state in set(OrderState) - {OrderState.DRAFT}:
        with pytest.raises(TransitionRefused) as refused:
            check_release(state)
        assert (refused.value.action, refused.value.state) == ("release", state)


@given(states, st.booleans())
def test_only_a_draft_or_a_released_order_never_reserved_for_can_be_edited(state, ever_reserved):
    if state in (OrderState.DRAFT, OrderState.RELEASED) and not ever_reserved:
        check_edit(state, ever_reserved=ever_reserved)
    else:
        with pytest.raises(TransitionRefused) as refused:
            check_edit(state, ever_reserved=ever_reserved)
        assert (refused.value.action, refused.value.state) == ("edit", state)


@given(states, st.lists(lines(picked=st.just(0)), max_size=5))
def test_an_order_with_nothing_picked_can_be_cancelled_until_its_picking_starts(state, order_lines):
    if state in CANCELLABLE:
        assert check_cancel(state, order_lines) is OrderState.CANCELLED
    else:
        with pytest.raises(TransitionRefused):
            check_cancel(state, order_lines)


@given(states, st.lists(lines(), min_size=1, max_size=5).filter(lambda ls: any(line.picked for line in ls)))
def test_an_order_with_picked_units_is_never_cancelled_and_the_refusal_counts_them(state, order_lines):
    with pytest.raises(TransitionRefused) as refused:
        check_cancel(state, order_lines)
    assert refused.value.picked == sum(line.picked for line in order_lines)


@given(lines())
def test_the_need_of_a_line_is_what_is_neither_reserved_picked_nor_shipped_and_never_negative(line):
    assert line.need == max(line.quantity - line.allocated - line.picked - line.shipped, 0)
    assert 0 <= line.need <= line.quantity


@given(st.lists(lines(), max_size=5), st.booleans())
def test_drafts_and_final_orders_stay_as_they_are_whatever_the_lines_say(order_lines, being_picked):
    for state in (OrderState.DRAFT, *FINAL):
        assert progress_state(state, order_lines, being_picked=being_picked) is state


def test_work_on_the_lines_moves_a_released_order_along():
    released = OrderState.RELEASED
    assert (
        progress_state(released, [LineProgress(10, allocated=4)], being_picked=False) is OrderState.ALLOCATED
    )
    assert progress_state(released, [LineProgress(10, allocated=4)], being_picked=True) is OrderState.PICKING
    assert progress_state(released, [LineProgress(10, picked=10)], being_picked=False) is OrderState.PICKED
    assert progress_state(OrderState.PICKED, [LineProgress(10)], being_picked=False) is OrderState.RELEASED


@given(states, st.integers(min_value=-600, max_value=600))
def test_an_order_is_late_once_its_due_time_has_passed_until_it_is_dispatched_or_cancelled(state, minutes):
    due = NOW + timedelta(minutes=minutes)
    assert is_late(state, due, NOW) == (minutes < 0 and state not in FINAL)


def test_generated_numbers_carry_the_day_and_a_four_digit_sequence():
    assert order_number(date(2026, 11, 25), 42) == "CMD-20261125-0042"
    assert order_number(date(2026, 1, 2), 12345) == "CMD-20260102-12345"


@given(states, st.lists(lines(), min_size=1, max_size=5))
def test_only_a_released_or_allocated_order_with_nothing_picked_goes_on_hold(state, order_lines):
    if state in (OrderState.RELEASED, OrderState.ALLOCATED) and not any(line.picked for line in order_lines):
        assert check_hold(state, order_lines) is OrderState.DRAFT
    else:
        with pytest.raises(TransitionRefused) as refused:
            check_hold(state, order_lines)
        assert (refused.value.action, refused.value.picked) == (
            "hold",
            sum(line.picked for line in order_lines),
        )
