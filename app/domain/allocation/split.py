"""Splitting one product's packs between destinations: tiers, policies, rounding (PRODUCT.md, steps 1–3)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from fractions import Fraction
from itertools import accumulate, pairwise
from operator import attrgetter
from typing import NamedTuple, cast

from app.domain.allocation.explain import (
    FITTED,
    MINIMUMS,
    PRIORITY,
    SHARED,
    UNSERVED,
    ProductAllocation,
    explain,
    explain_split,
)
from app.domain.allocation.model import Demand, Policy, ProductRequest, Rounding, Supply
from app.domain.allocation.quantities import (
    Quotas,
    fill_in_priority_order,
    grant_minimums_in_order,
    hand_out_remainders,
    largest_remainder,
    sainte_lague,
    water_fill,
)

_code = attrgetter("destination_code")
_NO_SPLIT: tuple[list[int], list[int], int, int] = ([], [], 1, SHARED)
# Members of an enum are slow to reach through their class (a descriptor): the hot paths use these.
_STRICT_PRIORITY, _MINIMUMS_FIRST = Policy.STRICT_PRIORITY, Policy.MINIMUMS_FIRST
_EVEN, _QUOTA = Policy.EVEN, Policy.QUOTA
_SAINTE_LAGUE = Rounding.SAINTE_LAGUE


def priority(demand: Demand) -> tuple[int, int, str]:
    """The one order of destinations for every tie: tier, larger need first, then destination code."""
    return (demand.tier, -demand.need_units, demand.destination_code)


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
        [
            allocate_product(r.supply, r.demands, policy=policy, rounding=rounding, spill=spill)
            for r in ordered
        ]
    )


def allocate_product(
    supply: Supply,
    demands: Iterable[Demand],
    *,
    policy: Policy = Policy.PROPORTIONAL,
    rounding: Rounding = Rounding.LARGEST_REMAINDER,
    spill: bool = False,
) -> ProductAllocation:
    """Split one product's whole packs between its destinations, and say why each got what it got.

    Written for speed (a run splits 100,000 lines, five a product on average): few calls and lists per
    product and no call per line but the sort key; the tier to split is found by bisection, and without
    spill or eaches (the common case) one loop explains every line. `reference_allocation.py` under
    tests/unit/domain is the straightforward version it must agree with, result for result.
    """
    lines = sorted(demands, key=priority)
    n = len(lines)
    if len(set(map(_code, lines))) != n:
        raise ValueError(f"{supply.product}: one demand per destination")
    pack_size, round_up = supply.pack_size, supply.round_up
    # pack_cap and minimum_packs (quantities.py), inline, in one pass
    caps: list[int] = []
    lows: list[int] = []
    for d in lines:
        cap = -(-d.need_units // pack_size) if round_up else d.need_units // pack_size
        if d.max_units is not None and d.max_units // pack_size < cap:
            cap = d.max_units // pack_size
        caps.append(cap)
        if d.min_units:
            low = -(-d.min_units // pack_size)
            lows.append(low if low < cap else cap)
        else:
            lows.append(0)
    distributable = supply.available_units - supply.holdback  # Supply.packs and loose_units, inline
    total = distributable // pack_size if distributable > 0 else 0
    loose = distributable % pack_size if supply.allow_eaches and distributable > 0 else 0
    if not spill and not loose:  # at most one tier split, no eaches: the common case
        start, end, tier = _serve_tiers(lines, caps, lows, total, policy, rounding)
        return ProductAllocation(
            supply,
            explain_split(
                lines,
                pack_size,
                caps,
                lows,
                start,
                end,
                *tier,
                round_up,
                not total,
                rounding is _SAINTE_LAGUE,
            ),
        )
    if sum(caps) <= total:
        split = _Split(caps, caps, [1] * n, [FITTED] * n)
    elif spill:
        split = _serve_tiers_with_spill(lines, caps, lows, total, policy, rounding)
    else:
        split = _serve_tiers_in_full(lines, caps, lows, total, policy, rounding)
    eaches = _hand_out_eaches(lines, caps, split.packs, pack_size, loose) if loose else [0] * n
    return ProductAllocation(
        supply,
        explain(
            lines,
            pack_size,
            caps,
            lows,
            split.packs,
            split.numerators,
            split.denominators,
            split.stages,
            eaches,
            round_up=round_up,
            no_stock=total == 0,
            sainte_lague=rounding is _SAINTE_LAGUE,
        ),
    )


class _Split(NamedTuple):
    """How one product's packs were split, per line (built and read inside allocate_product)."""

    packs: list[int]
    numerators: list[int]  # the exact quota in packs is numerator / denominator
    denominators: list[int]
    stages: list[int]  # how its packs were decided: FITTED, SHARED, ... (explain.py)


def _serve_tiers(
    lines: Sequence[Demand], caps: list[int], lows: list[int], total: int, policy: Policy, rounding: Rounding
) -> tuple[int, int, tuple[list[int], list[int], int, int]]:
    """Tiers in order: a tier whose caps fit gets them; the first that does not is split; lower tiers
    get nothing.

    That tier is the one of the first line whose running sum of caps (in priority order) passes `total`.
    Returns where it starts and ends, and its split: packs, quota numerators, their denominator, stage
    (an empty split when nothing is left for it: it gets nothing, as those below; or when all fit).
    """
    filled = list(accumulate(caps))
    first_short = bisect_right(filled, total)
    n = len(lines)
    if first_short == n:  # every tier fits
        return n, n, _NO_SPLIT
    tier = lines[first_short].tier
    start, end = first_short, first_short + 1
    while start and lines[start - 1].tier == tier:
        start -= 1
    while end < n and lines[end].tier == tier:
        end += 1
    left = total - filled[start - 1] if start else total
    if left == 0:
        return start, start, _NO_SPLIT
    packs, numerators, denominator, stage, _ = _split_tier(
        lines[start:end], caps[start:end], lows[start:end], left, policy, rounding, 0
    )
    return start, end, (packs, numerators, denominator, stage)


def _serve_tiers_in_full(
    lines: Sequence[Demand], caps: list[int], lows: list[int], total: int, policy: Policy, rounding: Rounding
) -> _Split:
    """`_serve_tiers` with every line's packs, quota and stage, for eaches to be handed out on top."""
    start, end, (packs, numerators, denominator, stage) = _serve_tiers(
        lines, caps, lows, total, policy, rounding
    )
    below = len(lines) - end
    zeros = [0] * below
    return _Split(
        caps[:start] + packs + zeros,
        caps[:start] + numerators + zeros,
        [1] * start + [denominator] * (end - start) + [1] * below,
        [FITTED] * start + [stage] * (end - start) + [UNSERVED] * below,
    )


def _serve_tiers_with_spill(
    lines: Sequence[Demand], caps: list[int], lows: list[int], left: int, policy: Policy, rounding: Rounding
) -> _Split:
    """Spill mode: as `_serve_tiers`, but lower tiers get what the split tier's caps left over."""
    n, start = len(lines), 0
    split = _Split(caps[:], caps[:], [1] * n, [FITTED] * n)
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
            packs, numerators, denominator, stage, left = _split_tier(
                lines[start:end], caps[start:end], lows[start:end], left, policy, rounding, sum(caps[end:])
            )
            split.packs[start:end] = packs
            split.numerators[start:end] = numerators
            split.denominators[start:end] = [denominator] * (end - start)
            split.stages[start:end] = [stage] * (end - start)
            if left == 0:
                start = end
                break
        start = end
    if start < n:
        unserved = [0] * (n - start)
        split.packs[start:] = unserved
        split.numerators[start:] = unserved
        split.stages[start:] = [UNSERVED] * (n - start)
    return split


def _split_tier(
    lines: Sequence[Demand],
    highs: list[int],
    lows: list[int],
    left: int,
    policy: Policy,
    rounding: Rounding,
    room_below: int,
) -> tuple[list[int], list[int], int, int, int]:
    """Split `left` packs within one tier's lines: packs, quota numerators and their denominator, the
    stage, and the packs passed on to lower tiers (spill)."""
    if sum(lows) > left:
        packs = grant_minimums_in_order(lows, left)
        return packs, packs, 1, MINIMUMS, 0
    if policy is _STRICT_PRIORITY:
        packs = fill_in_priority_order(lows, highs, left)
        return packs, packs, 1, PRIORITY, 0
    weights = _weights(lines, policy)
    if policy is _MINIMUMS_FIRST:
        packs, (numerators, denominator), passed = _share_above_minimums(
            weights, lows, highs, left, rounding, room_below
        )
        return packs, numerators, denominator, SHARED, passed
    if not room_below and rounding is not _SAINTE_LAGUE:
        # The common case, as water_fill then largest_remainder do it, in one loop: everyone is weighted
        # and the level that ignores minimums and caps is within them, so it is the water level.
        level = sum(weights)
        numerators, packs, ranked = [], [], []
        for i in range(len(weights)):
            share = left * weights[i]
            if weights[i] <= 0 or share < lows[i] * level or share > highs[i] * level:
                break
            numerators.append(share)
            pack = share // level
            packs.append(pack)
            if share - pack * level and pack < highs[i]:  # a remainder, and room for one more
                ranked.append((pack * level - share, i))
        else:
            hand_out_remainders(packs, ranked, left)
            return packs, numerators, level, SHARED, 0
    packs, (numerators, denominator), passed = _share(weights, lows, highs, left, rounding, room_below)
    return packs, numerators, denominator, SHARED, passed


def _share(
    weights: list[int], lows: list[int], highs: list[int], left: int, rounding: Rounding, room_below: int
) -> tuple[list[int], Quotas, int]:
    """Exact quotas by water-filling, rounded to whole packs; with the packs passed down in spill mode."""
    if room_below:
        quotas, passed = _quotas_with_spill(weights, lows, highs, left, room_below)
    else:
        quotas, passed = water_fill(weights, lows, highs, left), 0
    if rounding is _SAINTE_LAGUE:
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
    if policy is _EVEN:
        return [1] * len(lines)
    if policy is _QUOTA:
        values = [d.quota_percent or 0 for d in lines]
    else:  # a loop: cheaper than a comprehension for the few lines of a tier
        values = []
        for d in lines:
            values.append(d.need_units if d.weight is None else d.weight)
    if Fraction not in map(type, values):
        return cast(list[int], values)
    scale = math.lcm(*(Fraction(v).denominator for v in values))
    return [int(v * scale) for v in values]


def _hand_out_eaches(
    lines: Sequence[Demand], caps: list[int], packs: list[int], pack_size: int, loose: int
) -> list[int]:
    """Loose units (less than a pack), for products that allow eaches: in priority order, to
    destinations still short, down to the first tier with a destination below its cap."""
    eaches = [0] * len(lines)
    last_tier = None
    for i, demand in enumerate(lines):
        if last_tier is not None and demand.tier > last_tier:
            break
        if packs[i] < caps[i]:
            last_tier = demand.tier
        limit = demand.need_units if demand.max_units is None else min(demand.need_units, demand.max_units)
        give = min(max(limit - packs[i] * pack_size, 0), loose)
        eaches[i] = give
        loose -= give
        if not loose:
            break
    return eaches
