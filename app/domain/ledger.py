"""Ledger arithmetic: how movements change balances, and what they may not do."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class MovementKind(StrEnum):
    RECEIPT = "receipt"  # into a location from outside
    PUTAWAY = "putaway"  # receiving dock → storage
    TRANSFER = "transfer"  # location → location
    ADJUSTMENT = "adjustment"  # in or out, with a reason
    COUNT_CORRECTION = "count_correction"  # the difference a count found
    RETURN = "return"  # back in from a destination
    PICK = "pick"  # out of a location against a reservation
    DISPATCH = "dispatch"  # out of the dispatch dock to a destination


@dataclass(frozen=True, order=True)
class StockKey:
    """One balance: a product at a location, in one lot (None for products without lots)."""

    product_id: int
    location_id: int
    lot_id: int | None

    def sort_key(self) -> tuple[int, int, int]:
        """The one order in which every transaction locks keys, so that two can never deadlock."""
        return StockKey.order_of(self.product_id, self.location_id, self.lot_id)

    @staticmethod
    def order_of(product_id: int, location_id: int, lot_id: int | None) -> tuple[int, int, int]:
        """`sort_key` of a balance known by its ids, for a caller that has many and builds no `StockKey`
        for each (a dispatch run sums its 100,000 tasks per balance): lot-less stock as lot 0."""
        return (product_id, location_id, lot_id or 0)


@dataclass(frozen=True)
class Balance:
    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Movement:
    kind: MovementKind
    product_id: int
    lot_id: int | None
    from_location_id: int | None
    to_location_id: int | None
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("a movement moves a positive quantity")
        if self.from_location_id is None and self.to_location_id is None:
            raise ValueError("a movement has a source or a destination")
        if self.from_location_id == self.to_location_id:
            raise ValueError("a movement goes somewhere else")

    def source(self) -> StockKey | None:
        return (
            None
            if self.from_location_id is None
            else StockKey(self.product_id, self.from_location_id, self.lot_id)
        )

    def destination(self) -> StockKey | None:
        return (
            None
            if self.to_location_id is None
            else StockKey(self.product_id, self.to_location_id, self.lot_id)
        )


class InsufficientStock(Exception):
    """Taking `requested` from `key` would leave less than what is reserved there."""

    def __init__(self, key: StockKey, available: int, requested: int) -> None:
        super().__init__(f"{key}: {available} available, {requested} requested")
        self.key, self.available, self.requested = key, available, requested


def keys_in_lock_order(movements: Iterable[Movement]) -> list[StockKey]:
    keys = {key for m in movements for key in (m.source(), m.destination()) if key is not None}
    return sorted(keys, key=StockKey.sort_key)


def deltas(movements: Iterable[Movement]) -> dict[StockKey, int]:
    """Net change of on-hand per key (what the ledger adds up to)."""
    totals: dict[StockKey, int] = {}
    for movement in movements:
        if (source := movement.source()) is not None:
            totals[source] = totals.get(source, 0) - movement.quantity
        if (destination := movement.destination()) is not None:
            totals[destination] = totals.get(destination, 0) + movement.quantity
    return totals


def apply_movements(
    balances: Mapping[StockKey, Balance], movements: Sequence[Movement]
) -> dict[StockKey, Balance]:
    """The new balance of every key the movements touch; refuses to take stock that is not available.

    Movements apply in order, so a transfer out of a location may use stock received into it just before.
    A pick consumes stock that was reserved for it; every other outflow may only take unreserved stock.
    """
    result = {key: balances.get(key, Balance()) for key in keys_in_lock_order(movements)}
    for movement in movements:
        if (source := movement.source()) is not None:
            current = result[source]
            consumes_reservation = movement.kind is MovementKind.PICK
            limit = current.on_hand if consumes_reservation else current.available
            if movement.quantity > limit:
                raise InsufficientStock(source, limit, movement.quantity)
            reserved = current.reserved - movement.quantity if consumes_reservation else current.reserved
            result[source] = Balance(current.on_hand - movement.quantity, max(reserved, 0))
        if (destination := movement.destination()) is not None:
            current = result[destination]
            result[destination] = replace(current, on_hand=current.on_hand + movement.quantity)
    return result


def count_difference(key: StockKey, on_hand: int, counted: int) -> Movement | None:
    """The count correction that makes the ledger agree with what was counted (None when it does)."""
    if counted < 0:
        raise ValueError("a count cannot be negative")
    if counted == on_hand:
        return None
    difference = counted - on_hand
    if difference > 0:
        return Movement(
            MovementKind.COUNT_CORRECTION, key.product_id, key.lot_id, None, key.location_id, difference
        )
    return Movement(
        MovementKind.COUNT_CORRECTION, key.product_id, key.lot_id, key.location_id, None, -difference
    )
