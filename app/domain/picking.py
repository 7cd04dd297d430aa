"""Picking: what a pick task asks for, how a scan is checked against it, and the order tasks are walked in.

A task reserves `quantity` of a product, in one lot, at one location. The operator scans the location,
then the product (or its GS1 label, which carries the lot), keys what they found, and confirms. Each
scan is checked as it comes, in that order, so the first thing that is wrong is the one reported:
the wrong shelf before the wrong item, the wrong item before its lot. A lot past its expiry date is
never picked, even when it is the task's own lot (it expired after the run reserved it): the operator
records a short pick instead and the next run chooses another lot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol, TypeVar


class PickProblem(StrEnum):
    """Why a scan or a confirmation does not fit the task: each has its own message."""

    WRONG_LOCATION = "wrong_location"
    WRONG_PRODUCT = "wrong_product"
    LOT_MISSING = "lot_missing"
    WRONG_LOT = "wrong_lot"
    EXPIRED_LOT = "expired_lot"
    TOO_MANY = "too_many"


@dataclass(frozen=True, slots=True)
class PickTarget:
    """What a task asks for, as the operator sees it."""

    location_id: int
    location: str  # code
    product_id: int
    sku: str
    lot: str | None  # lot code; None for a product without lots
    expiry: date | None
    quantity: int


@dataclass(frozen=True, slots=True)
class Scanned:
    """One scanned code: what was read, and the id it stands for (None: nothing known by it)."""

    text: str
    id: int | None


@dataclass(frozen=True, slots=True)
class PickScan:
    """What the operator has scanned and keyed so far; None is "not yet", checked later."""

    location: Scanned | None = None
    product: Scanned | None = None
    lot: str | None = None
    quantity: int | None = None


def check_pick(target: PickTarget, scan: PickScan, today: date) -> PickProblem | None:
    """The first thing that does not fit the task, in walking order; None when everything scanned fits.

    Nothing found (quantity 0) needs only the location: there is no product or lot to check.
    """
    if scan.location is not None and scan.location.id != target.location_id:
        return PickProblem.WRONG_LOCATION
    takes_nothing = scan.quantity == 0
    if scan.product is not None and not takes_nothing:
        if scan.product.id != target.product_id:
            return PickProblem.WRONG_PRODUCT
        if target.lot is not None:
            if not scan.lot:
                return PickProblem.LOT_MISSING
            if scan.lot != target.lot:
                return PickProblem.WRONG_LOT
            if is_expired(target.expiry, today):
                return PickProblem.EXPIRED_LOT
    if scan.quantity is not None and scan.quantity > target.quantity:
        return PickProblem.TOO_MANY
    return None


def is_expired(expiry: date | None, today: date) -> bool:
    """A lot may be picked up to and including its expiry date."""
    return expiry is not None and expiry < today


@dataclass(frozen=True, slots=True)
class PickOutcome:
    """What a confirmation records: found units go to the dock, the rest is a short pick."""

    picked: int
    short: int

    @property
    def status(self) -> str:
        return "short" if self.short else "picked"


def settle(quantity: int, picked: int) -> PickOutcome:
    """Split a task's quantity into what was picked and what was found missing."""
    if quantity <= 0:
        raise ValueError("a task asks for a positive quantity")
    if not 0 <= picked <= quantity:
        raise ValueError("picked must be between 0 and the task's quantity")
    return PickOutcome(picked, quantity - picked)


# ---------------------------------------------------------------- walking order


class OnPath(Protocol):
    """Anything with a place on the pick path: a task row of a screen, a step of a test."""

    @property
    def task_id(self) -> int: ...
    @property
    def pick_seq(self) -> int: ...
    @property
    def location(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def lot(self) -> str | None: ...
    @property
    def expiry(self) -> date | None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One task's place on the pick path."""

    task_id: int
    pick_seq: int
    location: str
    sku: str
    lot: str | None = None
    expiry: date | None = None


S = TypeVar("S", bound=OnPath)


def walk_key(step: OnPath) -> tuple[int, str, str, date, str, int]:
    """Pick path first; at one location by SKU, soonest expiry, lot; the task id settles any tie."""
    return (step.pick_seq, step.location, step.sku, step.expiry or date.max, step.lot or "", step.task_id)


def walking_order(steps: Iterable[S]) -> list[S]:
    """Tasks in the order an operator walks them: the same whatever order they came in."""
    return sorted(steps, key=walk_key)


def stops(steps: Iterable[S]) -> list[tuple[str, list[S]]]:
    """Walking order grouped by location: one stop per location, its tasks in order."""
    grouped: list[tuple[str, list[S]]] = []
    for step in walking_order(steps):
        if grouped and grouped[-1][0] == step.location:
            grouped[-1][1].append(step)
        else:
            grouped.append((step.location, [step]))
    return grouped


def next_step(steps: Sequence[S], done: Iterable[int]) -> S | None:
    """The first task in walking order not yet done, or None when the list is finished."""
    finished = set(done)
    return next((step for step in walking_order(steps) if step.task_id not in finished), None)
