"""The allocation engine as it was before its speed work (commit e296849), kept whole as an oracle.

`test_allocation_oracle.py` checks that the engine gives exactly what this copy gives (plans, quotas,
reasons, types) on many inputs: do not edit it to follow the engine; it is the behaviour to keep.
Copied from app/domain/allocation/quantities.py, split.py and explain.py (`reason_for`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import cast

from app.domain.allocation.explain import Explanation, ProductAllocation, Reason
from app.domain.allocation.model import Demand, Policy, ProductRequest, Rounding, Supply

FITTED = 0  # its tier fitted: it got its cap
SHARED = 1  # its tier was split by the policy's quotas, then rounded
MINIMUMS = 2  # its tier's minimums did not fit: whole minimums in priority order
PRIORITY = 3  # strict priority: minimums, then greedy in priority order
UNSERVED = 4  # a lower tier than the split one, or nothing left when its turn came

Quotas = tuple[list[int], int]  # numerators, and the denominator they share


def pack_cap(need_units: int, max_units: int | None, pack_size: int, round_up: bool) -> int:
    """c_i: the need in packs (last pack rounded up when the product allows it), within the maximum."""
    cap = -(-need_units // pack_size) if round_up else need_units // pack_size
    if max_units is not None:
        return min(cap, max_units // pack_size)
    return cap


def minimum_packs(min_units: int | None, cap: int, pack_size: int) -> int:
    """lo_i: the minimum in whole packs, never above the cap."""
    return min(-(-min_units // pack_size), cap) if min_units else 0


def grant_minimums_in_order(lows: Sequence[int], total: int) -> list[int]:
    """Whole minimums in priority order until the packs run out (the last one granted may be partial)."""
    granted = []
    for low in lows:
        grant = low if low <= total else total
        granted.append(grant)
        total -= grant
    return granted


def fill_in_priority_order(lows: Sequence[int], highs: Sequence[int], total: int) -> list[int]:
    """Strict priority: every minimum, then each destination up to its cap in priority order."""
    granted = list(lows)
    left = total - sum(lows)
    for i, high in enumerate(highs):
        if left <= 0:
            break
        more = min(high - granted[i], left)
        granted[i] += more
        left -= more
    return granted


def water_fill(
    weights: Sequence[int], lows: Sequence[int], highs: Sequence[int] | None, total: int
) -> Quotas:
    """Exact quotas q_i = clamp(λ·w_i, low_i, high_i) with Σq = total (needs Σlow ≤ total ≤ Σhigh).

    A destination without weight keeps its minimum, unless every weighted one is full: then the unweighted
    share the rest evenly. `highs` None means unbounded: how much each would take before caps.
    """
    members = range(len(weights))
    weighted = [i for i in members if weights[i] > 0]
    if len(weighted) == len(weights):
        return _level(weights, lows, highs, total, weighted)
    unweighted = [i for i in members if weights[i] <= 0]
    kept = sum(lows[i] for i in unweighted)
    room = sum(highs[i] for i in weighted) if highs is not None else None
    if weighted and (room is None or total - kept <= room):
        numerators, denominator = _level(weights, lows, highs, total - kept, weighted)
        for i in unweighted:
            numerators[i] = lows[i] * denominator
        return numerators, denominator
    # every weighted destination is full (or there is none): the rest goes evenly to the others
    numerators, denominator = _level([1] * len(weights), lows, highs, total - (room or 0), unweighted)
    full = highs or ()  # bounded whenever anyone is weighted
    for i in weighted:
        numerators[i] = full[i] * denominator
    return numerators, denominator


def _level(
    weights: Sequence[int], lows: Sequence[int], highs: Sequence[int] | None, total: int, members: list[int]
) -> Quotas:
    """The water level λ = N/W for the members (all weighted), by fixing at a bound whoever must be there.

    At a trial λ, if the shares above caps outweigh the shares lifted to minimums, the true λ is higher,
    so everyone above the cap stays there (and the converse): each round fixes at least one destination.
    """
    numerators = [0] * len(weights)
    caps = highs or ()  # only read for destinations found above one
    free = members
    fixed = 0
    while free:
        level_den = sum(weights[i] for i in free)
        level_num = total - fixed
        over, excess, under, deficit = [], 0, [], 0
        for i in free:
            share = level_num * weights[i]
            if highs is not None and share > highs[i] * level_den:
                over.append(i)
                excess += share - highs[i] * level_den
            elif share < lows[i] * level_den:
                under.append(i)
                deficit += lows[i] * level_den - share
            else:
                numerators[i] = share
        if excess == deficit:  # this λ is the one: clamp and stop
            for i in over:
                numerators[i] = caps[i] * level_den
            for i in under:
                numerators[i] = lows[i] * level_den
            _scale_fixed(numerators, members, free, level_den)
            return numerators, level_den
        if excess > deficit:
            for i in over:
                numerators[i] = caps[i]
                fixed += caps[i]
            stuck = set(over)
        else:
            for i in under:
                numerators[i] = lows[i]
                fixed += lows[i]
            stuck = set(under)
        free = [i for i in free if i not in stuck]
    return numerators, 1  # everyone sits at a bound, and the bounds add up to the total


def _scale_fixed(numerators: list[int], members: list[int], free: list[int], denominator: int) -> None:
    """Destinations fixed in earlier rounds hold whole packs: put them over the final denominator."""
    if len(free) == len(members):
        return
    still_free = set(free)
    for i in members:
        if i not in still_free:
            numerators[i] *= denominator


def largest_remainder(
    numerators: Sequence[int], denominator: int, highs: Sequence[int], total: int
) -> list[int]:
    """Floor every quota, then one pack each to the largest remainders (ties: priority order), below caps."""
    packs = [x // denominator for x in numerators]
    extra = total - sum(packs)
    if extra > 0:
        candidates = [i for i, x in enumerate(numerators) if x % denominator and packs[i] < highs[i]]
        candidates.sort(key=lambda i: (-(numerators[i] % denominator), i))
        if extra > len(candidates):
            raise ArithmeticError("quotas do not add up to the packs to hand out")
        for i in candidates[:extra]:
            packs[i] += 1
    return packs


def sainte_lague(
    weights: Sequence[int],
    lows: Sequence[int],
    highs: Sequence[int],
    quotas: Quotas,
    total: int,
) -> list[int]:
    """The divisor method with divisors 1, 3, 5, …, bounded by minimums and caps.

    Its result is the first `total` seats of one fixed sequence (by v_i / (2·a_i + 1), ties in priority
    order; destinations without weight come last, at weight 1), so more supply never takes a pack away.
    Rounding the water-filling quotas half up gives a prefix of that sequence; seats are then added or
    removed at its end.
    """
    numerators, denominator = quotas
    seats = [
        min(max((2 * x + denominator) // (2 * denominator), lo), hi)
        for x, lo, hi in zip(numerators, lows, highs, strict=True)
    ]
    missing = total - sum(seats)
    if missing > 0:
        ahead = [(_next_seat(weights[i], seats[i]), i) for i in range(len(seats)) if seats[i] < highs[i]]
        heapq.heapify(ahead)
        for _ in range(missing):
            _, i = heapq.heappop(ahead)
            seats[i] += 1
            if seats[i] < highs[i]:
                heapq.heappush(ahead, (_next_seat(weights[i], seats[i]), i))
    elif missing < 0:
        behind = [(_last_seat(weights[i], seats[i]), -i) for i in range(len(seats)) if seats[i] > lows[i]]
        heapq.heapify(behind)
        for _ in range(-missing):
            _, minus_i = heapq.heappop(behind)
            seats[-minus_i] -= 1
            if seats[-minus_i] > lows[-minus_i]:
                heapq.heappush(behind, (_last_seat(weights[-minus_i], seats[-minus_i]), minus_i))
    return seats


def _next_seat(weight: int, seats: int) -> tuple[int, Fraction]:
    """Where the seat after `seats` comes in the sequence: unweighted last, then by (2a+1)/(2w)."""
    return (0, Fraction(2 * seats + 1, 2 * weight)) if weight > 0 else (1, Fraction(2 * seats + 1, 2))


def _last_seat(weight: int, seats: int) -> tuple[int, Fraction]:
    """The negated place of the seat `seats` itself, so that a min-heap pops the latest first."""
    kind, place = _next_seat(weight, seats - 1)
    return (-kind, -place)


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


def reason_for(
    demand: Demand,
    supply: Supply,
    cap: int,
    low: int,
    packs: int,
    eaches: int,
    stage: int,
    numerator: int,
    denominator: int,
    sainte_lague: bool,
) -> Reason:
    """The one reason shown for a line; the first that applies wins."""
    need = demand.need_units
    if need == 0:
        return Reason.NOTHING_NEEDED
    if packs * supply.pack_size + eaches >= need:
        return Reason.SERVED_IN_FULL
    if packs == cap:
        return Reason.CAPPED_BY_MAX if _max_binds(demand, supply) else Reason.WHOLE_PACKS_ONLY
    if stage == UNSERVED:
        return Reason.NO_STOCK if supply.packs == 0 else Reason.TIER_NOT_SERVED
    if packs == 0 and stage in (MINIMUMS, PRIORITY):
        return Reason.PACKS_RAN_OUT
    if stage == MINIMUMS:
        return Reason.MINIMUM_GRANTED if packs == low else Reason.MINIMUM_PARTIAL
    if stage == PRIORITY:
        return Reason.MINIMUM_GRANTED if packs == low else Reason.PRIORITY_ORDER
    step = packs - numerator // denominator
    if step:
        if not sainte_lague:
            return Reason.REMAINDER_PLUS_ONE
        return Reason.ROUNDED_UP if step > 0 else Reason.ROUNDED_DOWN
    if low and numerator == low * denominator:
        return Reason.MINIMUM_GRANTED
    return Reason.PROPORTIONAL_SHARE if packs else Reason.PACKS_RAN_OUT


def _max_binds(demand: Demand, supply: Supply) -> bool:
    if demand.max_units is None:
        return False
    need, pack_size = demand.need_units, supply.pack_size
    wanted = -(-need // pack_size) if supply.round_up else need // pack_size
    return demand.max_units // pack_size < wanted
