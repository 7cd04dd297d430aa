"""Splitting one product's packs between destinations: tiers, policies, rounding (PRODUCT.md, steps 1–3)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import cast

from app.domain.allocation.explain import (
    FITTED,
    MINIMUMS,
    PRIORITY,
    SHARED,
    UNSERVED,
    Explanation,
    ProductAllocation,
    reason_for,
)
from app.domain.allocation.model import Demand, Policy, ProductRequest, Rounding, Supply
from app.domain.allocation.quantities import (
    Quotas,
    fill_in_priority_order,
    grant_minimums_in_order,
    largest_remainder,
    minimum_packs,
    pack_cap,
    sainte_lague,
    water_fill,
)


def priority(demand: Demand) -> tuple[int, int, str]:
    """The one order of destinations for every tie: tier, larger need first, then destination code."""
    return (demand.tier, -demand.need_units, demand.destination_code)


@dataclass(slots=True)
class _Split:
    """Working state of one product's split (not shared: built and read inside allocate_product)."""

    caps: list[int]
    lows: list[int]
    packs: list[int]
    numerators: list[int]
    denominators: list[int]
    stages: list[int]


def allocate(
    requests: Iterable[ProductRequest],
    *,
    policy: Policy = Policy.PROPORTIONAL,
    rounding: Rounding = Rounding.LARGEST_REMAINDER,
    spill: bool = False,
) -> tuple[ProductAllocation, ...]:
    """A dispatch run's quantities: every product split under the same rules, in product order."""
    ordered = sorted(requests, key=lambda request: request.supply.product)
    for before, after in pairwise(ordered):
        if before.supply.product == after.supply.product:
            raise ValueError(f"{after.supply.product}: one request per product")
    return tuple(
        allocate_product(r.supply, r.demands, policy=policy, rounding=rounding, spill=spill) for r in ordered
    )


def allocate_product(
    supply: Supply,
    demands: Iterable[Demand],
    *,
    policy: Policy = Policy.PROPORTIONAL,
    rounding: Rounding = Rounding.LARGEST_REMAINDER,
    spill: bool = False,
) -> ProductAllocation:
    """Split one product's whole packs between its destinations, and say why each got what it got."""
    lines = sorted(demands, key=priority)
    if len({demand.destination_code for demand in lines}) != len(lines):
        raise ValueError(f"{supply.product}: one demand per destination")
    pack_size, round_up = supply.pack_size, supply.round_up
    caps = [pack_cap(d.need_units, d.max_units, pack_size, round_up) for d in lines]
    lows = [minimum_packs(d.min_units, cap, pack_size) for d, cap in zip(lines, caps, strict=True)]
    split = _Split(caps, lows, caps[:], caps[:], [1] * len(lines), [FITTED] * len(lines))
    if sum(caps) > supply.packs:
        _serve_tiers(lines, split, supply.packs, policy, rounding, spill)
    eaches = _hand_out_eaches(lines, split, supply)
    return ProductAllocation(supply, _explain(lines, split, eaches, supply, rounding))


def _explain(
    lines: Sequence[Demand], split: _Split, eaches: list[int], supply: Supply, rounding: Rounding
) -> tuple[Explanation, ...]:
    pack_size, by_divisor = supply.pack_size, rounding is Rounding.SAINTE_LAGUE
    return tuple(
        [
            Explanation(
                demand,
                pack_size,
                cap,
                low,
                numerator,
                denominator,
                packs,
                loose,
                reason_for(demand, supply, cap, low, packs, loose, stage, numerator, denominator, by_divisor),
            )
            for demand, cap, low, numerator, denominator, packs, loose, stage in zip(
                lines,
                split.caps,
                split.lows,
                split.numerators,
                split.denominators,
                split.packs,
                eaches,
                split.stages,
                strict=True,
            )
        ]
    )


def _serve_tiers(
    lines: Sequence[Demand], split: _Split, left: int, policy: Policy, rounding: Rounding, spill: bool
) -> None:
    """Tiers in order: a tier whose caps fit gets them; the first that does not is split; lower tiers
    get nothing, or in spill mode what the split tier's caps left over."""
    n, caps, start = len(lines), split.caps, 0
    while start < n:
        tier, end = lines[start].tier, start + 1
        while end < n and lines[end].tier == tier:
            end += 1
        wanted = sum(caps[start:end])
        if wanted <= left:
            left -= wanted
        elif left == 0:
            break
        else:
            room_below = sum(caps[end:]) if spill else 0
            left = _split_tier(lines, split, start, end, left, policy, rounding, room_below)
            if left == 0:
                start = end
                break
        start = end
    for i in range(start, n):
        split.packs[i] = split.numerators[i] = 0
        split.stages[i] = UNSERVED


def _split_tier(
    lines: Sequence[Demand],
    split: _Split,
    start: int,
    end: int,
    left: int,
    policy: Policy,
    rounding: Rounding,
    room_below: int,
) -> int:
    """Split `left` packs within lines[start:end]; return the packs passed on to lower tiers (spill)."""
    lows, highs = split.lows[start:end], split.caps[start:end]
    passed = 0
    if sum(lows) > left:
        packs, stage = grant_minimums_in_order(lows, left), MINIMUMS
        quotas = (packs, 1)
    elif policy is Policy.STRICT_PRIORITY:
        packs, stage = fill_in_priority_order(lows, highs, left), PRIORITY
        quotas = (packs, 1)
    else:
        weights = _weights(lines[start:end], policy)
        if policy is Policy.MINIMUMS_FIRST:
            packs, quotas, passed = _share_above_minimums(weights, lows, highs, left, rounding, room_below)
        else:
            packs, quotas, passed = _share(weights, lows, highs, left, rounding, room_below)
        stage = SHARED
    split.packs[start:end] = packs
    split.numerators[start:end] = quotas[0]
    split.denominators[start:end] = [quotas[1]] * (end - start)
    split.stages[start:end] = [stage] * (end - start)
    return passed


def _share(
    weights: list[int], lows: list[int], highs: list[int], left: int, rounding: Rounding, room_below: int
) -> tuple[list[int], Quotas, int]:
    """Exact quotas by water-filling, rounded to whole packs; with the packs passed down in spill mode."""
    if room_below:
        quotas, passed = _quotas_with_spill(weights, lows, highs, left, room_below)
    else:
        quotas, passed = water_fill(weights, lows, highs, left), 0
    if rounding is Rounding.SAINTE_LAGUE:
        return sainte_lague(weights, lows, highs, quotas, left - passed), quotas, passed
    return largest_remainder(*quotas, highs, left - passed), quotas, passed


def _share_above_minimums(
    weights: list[int], lows: list[int], highs: list[int], left: int, rounding: Rounding, room_below: int
) -> tuple[list[int], Quotas, int]:
    """Minimums first: everyone's minimum, then the rest shared by weight on top of it, up to the caps."""
    above = [high - low for high, low in zip(highs, lows, strict=True)]
    packs, (numerators, denominator), passed = _share(
        weights, [0] * len(lows), above, left - sum(lows), rounding, room_below
    )
    return (
        [p + low for p, low in zip(packs, lows, strict=True)],
        ([x + low * denominator for x, low in zip(numerators, lows, strict=True)], denominator),
        passed,
    )


def _quotas_with_spill(
    weights: list[int], lows: list[int], highs: list[int], left: int, room_below: int
) -> tuple[Quotas, int]:
    """Spill: each keeps its share up to its cap; the whole packs above caps go down a tier, as far as
    the lower tiers' caps can take them (the rest stays and is split as without spill)."""
    numerators, denominator = water_fill(weights, lows, None, left)
    capped = [min(x, high * denominator) for x, high in zip(numerators, highs, strict=True)]
    passed = (left * denominator - sum(capped)) // denominator
    if passed <= room_below:
        return (capped, denominator), passed
    return water_fill(weights, lows, highs, left - room_below), room_below


def _weights(lines: Sequence[Demand], policy: Policy) -> list[int]:
    """The policy's weights as integers (fractions are scaled by a common denominator)."""
    values: list[int | Fraction]
    if policy is Policy.EVEN:
        return [1] * len(lines)
    if policy is Policy.QUOTA:
        values = [d.quota_percent or 0 for d in lines]
    else:
        values = [d.need_units if d.weight is None else d.weight for d in lines]
    if Fraction not in map(type, values):
        return cast(list[int], values)
    scale = math.lcm(*(Fraction(v).denominator for v in values))
    return [int(v * scale) for v in values]


def _hand_out_eaches(lines: Sequence[Demand], split: _Split, supply: Supply) -> list[int]:
    """Loose units (less than a pack), for products that allow eaches: in priority order, to
    destinations still short, down to the first tier with a destination below its cap."""
    eaches = [0] * len(lines)
    loose = supply.loose_units if supply.allow_eaches else 0
    if not loose:
        return eaches
    pack_size, last_tier = supply.pack_size, None
    for i, demand in enumerate(lines):
        if last_tier is not None and demand.tier > last_tier:
            break
        if split.packs[i] < split.caps[i]:
            last_tier = demand.tier
        limit = demand.need_units if demand.max_units is None else min(demand.need_units, demand.max_units)
        give = min(max(limit - split.packs[i] * pack_size, 0), loose)
        eaches[i] = give
        loose -= give
        if not loose:
            break
    return eaches
