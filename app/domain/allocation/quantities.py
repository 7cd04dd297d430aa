"""Whole packs from exact shares: caps, minimums, water-filling and the two roundings.

Quotas are exact: numerators over one shared denominator (plain integers, so ties are real ties and the
arithmetic stays fast). Sequences are in priority order, so an index is also the tie-break rank.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from fractions import Fraction

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
    if weights and min(weights) > 0:  # everyone weighted: first try the level that ignores the bounds
        level = sum(weights)
        shares = [total * weight for weight in weights]
        for share, low in zip(shares, lows, strict=True):
            if share < low * level:
                break
        else:
            if highs is None:
                return shares, level
            for share, high in zip(shares, highs, strict=True):
                if share > high * level:
                    break
            else:
                return shares, level  # what _level finds at once when nobody is out of bounds
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
    packs = []
    ranked = []  # who may take one more: (minus the remainder, index), to sort
    for i in range(len(numerators)):
        pack = numerators[i] // denominator
        packs.append(pack)
        remainder = numerators[i] - pack * denominator  # numerators[i] % denominator
        if remainder and pack < highs[i]:
            ranked.append((-remainder, i))
    hand_out_remainders(packs, ranked, total)
    return packs


def hand_out_remainders(packs: list[int], ranked: list[tuple[int, int]], total: int) -> None:
    """The packs the floored quotas leave, one each to the largest remainders, in `packs`.

    `ranked`: (minus the remainder, index) of each line with a remainder and room for one more pack.
    """
    extra = total - sum(packs)
    if extra > 0:
        if extra > len(ranked):
            raise ArithmeticError("quotas do not add up to the packs to hand out")
        if extra < len(ranked):
            ranked.sort()  # largest remainder first, then priority order (indexes are unique)
        for _, i in ranked[:extra]:
            packs[i] += 1


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
