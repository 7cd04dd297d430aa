"""Dispatch orders: their states, which moves between them a person may ask for, and where work puts them.

A person asks for three transitions (release a draft, put an order not being picked on hold, which
makes it a draft again, and cancel an open order), and may correct an order no stock was ever reserved
for. The others follow from the
work done on the order's lines, so they are derived, never set by hand: an order with reserved stock is
allocated, with a list being picked it is picking, with everything reserved picked it is picked, and a
shipment makes it dispatched. Deriving them from the lines keeps the state and the figures from ever
disagreeing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class OrderState(StrEnum):
    DRAFT = "draft"
    RELEASED = "released"
    ALLOCATED = "allocated"
    PICKING = "picking"
    PICKED = "picked"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


# States in which an order's unmet need takes part in dispatch runs.
OPEN_FOR_ALLOCATION = frozenset(
    {OrderState.RELEASED, OrderState.ALLOCATED, OrderState.PICKING, OrderState.PICKED}
)
# States a person may cancel from. Stock already picked must be put back first (a shipment or a move).
CANCELLABLE = frozenset({OrderState.DRAFT, OrderState.RELEASED, OrderState.ALLOCATED})
FINAL = frozenset({OrderState.DISPATCHED, OrderState.CANCELLED})
# States in which an order may still be corrected (destination, due time, priority, lines), as long as no
# run ever reserved stock for it: once a pick task names a line, the line is part of the warehouse's work.
EDITABLE = frozenset({OrderState.DRAFT, OrderState.RELEASED})


class TransitionRefused(Exception):
    """The order is not in a state that allows this; `state` says which one it is in.

    `picked`: the units already at the dispatch dock, when they are what stands in the way.
    """

    def __init__(self, action: str, state: OrderState, picked: int = 0) -> None:
        super().__init__(f"cannot {action} an order that is {state}")
        self.action, self.state, self.picked = action, state, picked


@dataclass(frozen=True, slots=True)
class LineProgress:
    """Where one order line stands, in units."""

    quantity: int
    allocated: int = 0  # reserved by open pick tasks
    picked: int = 0  # at the dispatch dock
    shipped: int = 0

    @property
    def need(self) -> int:
        """What a dispatch run may still allocate to this line."""
        return max(self.quantity - self.allocated - self.picked - self.shipped, 0)


def check_release(state: OrderState) -> OrderState:
    """A draft becomes released: its demand joins the next dispatch run."""
    if state is not OrderState.DRAFT:
        raise TransitionRefused("release", state)
    return OrderState.RELEASED


# States an order may be put on hold from: asked for, and maybe reserved for, but nobody is picking it.
HOLDABLE = frozenset({OrderState.RELEASED, OrderState.ALLOCATED})


def may_hold(state: OrderState, lines: Iterable[LineProgress]) -> bool:
    """An order nobody is picking, with nothing picked yet, may go back to draft."""
    return state in HOLDABLE and not any(line.picked for line in lines)


def check_hold(state: OrderState, lines: Iterable[LineProgress]) -> OrderState:
    """An order nobody is picking goes back to draft: its reservations are given back, runs skip it until
    it is released again. Units already picked must be shipped or put back first."""
    lines = list(lines)
    if not may_hold(state, lines):
        raise TransitionRefused("hold", state, sum(line.picked for line in lines))
    return OrderState.DRAFT


def check_cancel(state: OrderState, lines: Iterable[LineProgress]) -> OrderState:
    """An order not yet picked may be cancelled; its reservations are then released."""
    picked = sum(line.picked for line in lines)
    if state not in CANCELLABLE or picked:
        raise TransitionRefused("cancel", state, picked)
    return OrderState.CANCELLED


def may_edit(state: OrderState, *, ever_reserved: bool) -> bool:
    """A draft, or a released order no run has reserved for yet, may be corrected."""
    return state in EDITABLE and not ever_reserved


def check_edit(state: OrderState, *, ever_reserved: bool) -> None:
    if not may_edit(state, ever_reserved=ever_reserved):
        raise TransitionRefused("edit", state)


def progress_state(state: OrderState, lines: Iterable[LineProgress], *, being_picked: bool) -> OrderState:
    """The state the work on the lines puts an open order in (draft, final states stay as they are).

    `being_picked`: one of the order's open tasks is on a list an operator has taken.
    """
    if state is OrderState.DRAFT or state in FINAL:
        return state
    allocated = picked = 0
    for line in lines:
        allocated += line.allocated
        picked += line.picked
    if allocated and being_picked:
        return OrderState.PICKING
    if allocated:
        return OrderState.ALLOCATED
    if picked:
        return OrderState.PICKED
    return OrderState.RELEASED


def check_ship(state: OrderState, lines: Iterable[LineProgress]) -> None:
    """Only picked stock leaves; an order with nothing at the dock has nothing to ship."""
    if state in FINAL or state is OrderState.DRAFT or not any(line.picked for line in lines):
        raise TransitionRefused("ship", state)


def backorder_lines(lines: Iterable[LineProgress]) -> list[int]:
    """Per line, the units a shipment leaves unserved (what its backorder asks for)."""
    return [max(line.quantity - line.shipped - line.picked, 0) for line in lines]


def is_late(state: OrderState, due_at: datetime, now: datetime) -> bool:
    """An order still to be dispatched whose due time has passed."""
    return state not in FINAL and due_at < now


def order_number(day: date, sequence: int) -> str:
    """The number given to an order that comes without one: CMD-20261125-0042 (day of the site)."""
    return f"CMD-{day:%Y%m%d}-{sequence:04d}"
