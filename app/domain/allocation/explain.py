"""What a supervisor reads: per destination, what it asked, what it got and why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple, cast

from app.domain.allocation.model import Demand, Supply

# How a destination's packs were decided (internal to the split; the reason is what is shown).
FITTED = 0  # its tier fitted: it got its cap
SHARED = 1  # its tier was split by the policy's quotas, then rounded
MINIMUMS = 2  # its tier's minimums did not fit: whole minimums in priority order
PRIORITY = 3  # strict priority: minimums, then greedy in priority order
UNSERVED = 4  # a lower tier than the split one, or nothing left when its turn came


class Reason(StrEnum):
    SERVED_IN_FULL = "served_in_full"
    CAPPED_BY_MAX = "capped_by_max"
    WHOLE_PACKS_ONLY = "whole_packs_only"  # at its cap, short by less than a pack (no round-up)
    MINIMUM_GRANTED = "minimum_granted"
    MINIMUM_PARTIAL = "minimum_partial"  # the packs ran out during its minimum
    REMAINDER_PLUS_ONE = "remainder_plus_one"  # largest remainder: floor of its quota, plus one
    ROUNDED_UP = "rounded_up"  # Sainte-Laguë: above the floor of its quota
    ROUNDED_DOWN = "rounded_down"  # Sainte-Laguë: below the floor of its quota
    PROPORTIONAL_SHARE = "proportional_share"  # the floor of its quota
    PRIORITY_ORDER = "priority_order"  # strict priority: what was left at its turn
    PACKS_RAN_OUT = "packs_ran_out"  # its tier was split and nothing came to it
    TIER_NOT_SERVED = "tier_not_served"
    NO_STOCK = "no_stock"
    NOTHING_NEEDED = "nothing_needed"


class Explanation(NamedTuple):
    """One destination's line of the allocation, with everything needed to explain it.

    A named tuple rather than a frozen dataclass: as immutable, and four times cheaper to build; a run
    builds one per demand line and must do 200,000 lines a second.
    """

    demand: Demand
    pack_size: int
    cap_packs: int
    min_packs: int
    quota_numerator: int  # the exact quota in packs is numerator / denominator
    quota_denominator: int
    packs: int
    eaches: int  # loose units on top of the packs, for products that allow them
    reason: Reason

    @property
    def destination_code(self) -> str:
        return self.demand.destination_code

    @property
    def tier(self) -> int:
        return self.demand.tier

    @property
    def need_units(self) -> int:
        return self.demand.need_units

    @property
    def min_units(self) -> int | None:
        return self.demand.min_units

    @property
    def max_units(self) -> int | None:
        return self.demand.max_units

    @property
    def quota(self) -> Fraction:
        """The exact share in packs before rounding."""
        return Fraction(self.quota_numerator, self.quota_denominator)

    @property
    def rounding_step(self) -> int:
        """Packs given beyond the floor of the quota: +1 for a largest remainder, 0 for none."""
        return self.packs - self.quota_numerator // self.quota_denominator

    @property
    def units(self) -> int:
        return self.packs * self.pack_size + self.eaches

    @property
    def shortage_units(self) -> int:
        return max(self.demand.need_units - self.units, 0)

    @property
    def fill_rate(self) -> Fraction:
        """Share of the need sent (above 1 when the last pack was rounded up)."""
        need = self.demand.need_units
        return Fraction(self.units, need) if need else Fraction(1)


@dataclass(frozen=True, slots=True)
class Shortage:
    """Need left unserved: it becomes a backorder."""

    product: str
    destination_code: str
    units: int


@dataclass(frozen=True, slots=True)
class ProductAllocation:
    """One product's result: packs per destination with their explanation, in priority order."""

    supply: Supply
    lines: tuple[Explanation, ...]

    @property
    def packs_allocated(self) -> int:
        return sum(line.packs for line in self.lines)

    def packs_by_destination(self) -> dict[str, int]:
        return {line.demand.destination_code: line.packs for line in self.lines}

    def units_by_destination(self) -> dict[str, int]:
        return {line.demand.destination_code: line.units for line in self.lines}

    @property
    def shortages(self) -> tuple[Shortage, ...]:
        product = self.supply.product
        return tuple(
            Shortage(product, line.demand.destination_code, line.shortage_units)
            for line in self.lines
            if line.shortage_units
        )


def _shared_reason(got: int, low: int, numerator: int, denominator: int, sainte_lague: bool) -> Reason:
    """Why a line of a shared tier got `got` packs: its rounding step, its minimum, or its share."""
    step = got - numerator // denominator
    if step:
        if not sainte_lague:
            return _REMAINDER_PLUS_ONE
        return _ROUNDED_UP if step > 0 else _ROUNDED_DOWN
    if low and numerator == low * denominator:
        return _MINIMUM_GRANTED
    return _PROPORTIONAL_SHARE if got else _PACKS_RAN_OUT


def explain(
    lines: Sequence[Demand],
    pack_size: int,
    caps: Sequence[int],
    lows: Sequence[int],
    packs: Sequence[int],
    numerators: Sequence[int],
    denominators: Sequence[int],
    stages: Sequence[int],
    eaches: Sequence[int],
    *,
    round_up: bool,
    no_stock: bool,
    sainte_lague: bool,
) -> tuple[Explanation, ...]:
    """Each line's explanation, with the one reason shown for it: the first that applies wins.

    Per line: its demand, cap and minimum in packs, packs, exact quota, how its packs were decided
    (stage) and eaches. `no_stock`: the product had no whole pack to hand out. The maximum binds when
    the cap is below the need in whole packs.
    """
    explanations = []
    unserved = _NO_STOCK if no_stock else _TIER_NOT_SERVED
    for demand, cap, low, got, numerator, denominator, stage, loose in zip(
        lines, caps, lows, packs, numerators, denominators, stages, eaches, strict=True
    ):
        need = demand.need_units
        if need == 0:
            reason = _NOTHING_NEEDED
        elif got * pack_size + loose >= need:
            reason = _SERVED_IN_FULL
        elif got == cap:
            wanted = -(-need // pack_size) if round_up else need // pack_size
            reason = _CAPPED_BY_MAX if cap < wanted else _WHOLE_PACKS_ONLY
        elif stage == UNSERVED:
            reason = unserved
        elif stage in (MINIMUMS, PRIORITY):
            if got == 0:
                reason = _PACKS_RAN_OUT
            elif got == low:
                reason = _MINIMUM_GRANTED
            else:
                reason = _MINIMUM_PARTIAL if stage == MINIMUMS else _PRIORITY_ORDER
        else:  # SHARED (a fitted line is at its cap)
            reason = _shared_reason(got, low, numerator, denominator, sainte_lague)
        fields = (demand, pack_size, cap, low, numerator, denominator, got, loose, reason)
        explanations.append(_explanation(Explanation, fields))
    return tuple(explanations)


def explain_split(
    lines: Sequence[Demand],
    pack_size: int,
    caps: Sequence[int],
    lows: Sequence[int],
    start: int,
    end: int,
    packs: Sequence[int],
    numerators: Sequence[int],
    denominator: int,
    stage: int,
    round_up: bool,
    no_stock: bool,
    sainte_lague: bool,
) -> tuple[Explanation, ...]:
    """`explain` without eaches, when at most one tier was split: lines before `start` fitted (they got
    their caps), lines[start:end] were split (packs, quotas over one denominator, stage), and lines from
    `end` on got nothing. One loop, without the per-line lists of packs, quotas and stages that
    `explain` reads: this is most lines of a run."""
    explanations = []
    unserved = _NO_STOCK if no_stock else _TIER_NOT_SERVED
    for i in range(len(lines)):
        demand, cap, low = lines[i], caps[i], lows[i]
        if i < start:
            got = numerator = cap
            quota_denominator = 1
        elif i < end:
            got = packs[i - start]
            numerator = numerators[i - start]
            quota_denominator = denominator
        else:
            got = numerator = 0
            quota_denominator = 1
        need = demand.need_units
        if need == 0:
            reason = _NOTHING_NEEDED
        elif got * pack_size >= need:
            reason = _SERVED_IN_FULL
        elif got == cap:  # every fitted line
            wanted = -(-need // pack_size) if round_up else need // pack_size
            reason = _CAPPED_BY_MAX if cap < wanted else _WHOLE_PACKS_ONLY
        elif i >= end:
            reason = unserved
        elif stage == SHARED:
            reason = _shared_reason(got, low, numerator, denominator, sainte_lague)
        elif got == 0:  # MINIMUMS or PRIORITY
            reason = _PACKS_RAN_OUT
        elif got == low:
            reason = _MINIMUM_GRANTED
        else:
            reason = _MINIMUM_PARTIAL if stage == MINIMUMS else _PRIORITY_ORDER
        fields = (demand, pack_size, cap, low, numerator, quota_denominator, got, 0, reason)
        explanations.append(_explanation(Explanation, fields))
    return tuple(explanations)


# Explanation(*fields) without the named tuple's Python-level __new__: the same tuple, built in C.
_explanation = cast(Callable[[type[Explanation], tuple[Any, ...]], Explanation], tuple.__new__)
# Members of an enum are slow to reach through their class (a descriptor): the loops use these.
_NOTHING_NEEDED = Reason.NOTHING_NEEDED
_SERVED_IN_FULL = Reason.SERVED_IN_FULL
_CAPPED_BY_MAX = Reason.CAPPED_BY_MAX
_WHOLE_PACKS_ONLY = Reason.WHOLE_PACKS_ONLY
_REMAINDER_PLUS_ONE = Reason.REMAINDER_PLUS_ONE
_ROUNDED_UP = Reason.ROUNDED_UP
_ROUNDED_DOWN = Reason.ROUNDED_DOWN
_MINIMUM_GRANTED = Reason.MINIMUM_GRANTED
_MINIMUM_PARTIAL = Reason.MINIMUM_PARTIAL
_PROPORTIONAL_SHARE = Reason.PROPORTIONAL_SHARE
_PACKS_RAN_OUT = Reason.PACKS_RAN_OUT
_PRIORITY_ORDER = Reason.PRIORITY_ORDER
_NO_STOCK = Reason.NO_STOCK
_TIER_NOT_SERVED = Reason.TIER_NOT_SERVED
