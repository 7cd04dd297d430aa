"""`python -m bench.allocation`: the pure allocation function against a naive greedy, same input, same run.

Builds a realistic batch from a seed (100,000 demand lines over 20,000 products and 200 destinations;
mixed tiers, minimums and maximums, pack sizes from 1 to 24, supply short on about 80 % of products),
times `allocate` (best of a few runs) and a first-come, first-served greedy on the same input, and
prints demand lines per second and the ratio. The issue's goal: ≥ 200,000 lines/s for the default rules.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable, Sequence

from app.domain.allocation import Demand, Policy, ProductRequest, Rounding, Supply, allocate

GOAL_LINES_PER_SECOND = 200_000
PACK_SIZES = (1, 2, 4, 6, 6, 10, 12, 12, 24)


def make_batch(seed: int, lines: int, products: int, destinations: int) -> list[ProductRequest]:
    """The same batch for the same arguments: every product has at least one line."""
    rng = random.Random(seed)
    places = [
        (f"D{d:03d}", rng.choices((1, 2, 3), weights=(2, 5, 3))[0], rng.random(), rng.random())
        for d in range(destinations)
    ]
    counts = [1] * products
    for _ in range(lines - products):
        counts[rng.randrange(products)] += 1
    batch = []
    for number, count in enumerate(counts):
        pack = rng.choice(PACK_SIZES)
        demands = []
        for code, tier, has_min, has_max in rng.sample(places, min(count, destinations)):
            need = rng.randint(1, 15) * pack + rng.randrange(pack)
            minimum = rng.randint(1, 2) * pack if has_min < 0.3 else None
            maximum = rng.randint(3, 12) * pack if has_max < 0.2 else None
            demands.append(Demand(code, tier, need, minimum, maximum))
        total_need = sum(d.need_units for d in demands)
        share = rng.uniform(0.3, 0.95) if rng.random() < 0.8 else rng.uniform(1.0, 1.5)
        supply = Supply(
            f"SKU{number:05d}",
            pack,
            int(total_need * share),
            round_up=rng.random() < 0.5,
            holdback=rng.choice((0, 0, 0, pack)),
        )
        batch.append(ProductRequest(supply, tuple(demands)))
    return batch


def first_come_first_served(batch: Sequence[ProductRequest]) -> list[dict[str, int]]:
    """The naive baseline: each line, in the order it came, takes its packs while there are any."""
    result = []
    for request in batch:
        supply, left, packs = request.supply, request.supply.packs, {}
        for demand in request.demands:
            want = (
                -(-demand.need_units // supply.pack_size)
                if supply.round_up
                else demand.need_units // supply.pack_size
            )
            if demand.max_units is not None:
                want = min(want, demand.max_units // supply.pack_size)
            give = min(want, left)
            packs[demand.destination_code] = give
            left -= give
        result.append(packs)
    return result


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The best time of `runs`, with the cyclic collector paused as dispatch runs pause it (both sides)."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        finally:
            gc.enable()
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.allocation", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--destinations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    batch = make_batch(args.seed, args.lines, args.products, args.destinations)
    lines = sum(len(request.demands) for request in batch)
    short = sum(
        1 for r in batch if r.supply.packs < sum(d.need_units // r.supply.pack_size for d in r.demands)
    )
    print(f"batch: {lines:,} demand lines, {len(batch):,} products ({short:,} short), seed {args.seed}")

    naive = best_of(args.runs, lambda: first_come_first_served(batch))
    print(f"{'first come, first served (naive)':<50} {lines / naive:>12,.0f} lines/s")
    default = None
    for policy, rounding, spill in (
        (Policy.PROPORTIONAL, Rounding.LARGEST_REMAINDER, False),
        (Policy.PROPORTIONAL, Rounding.SAINTE_LAGUE, False),
        (Policy.PROPORTIONAL, Rounding.LARGEST_REMAINDER, True),
        (Policy.MINIMUMS_FIRST, Rounding.LARGEST_REMAINDER, False),
        (Policy.EVEN, Rounding.LARGEST_REMAINDER, False),
        (Policy.STRICT_PRIORITY, Rounding.LARGEST_REMAINDER, False),
    ):
        elapsed = best_of(
            args.runs, lambda p=policy, r=rounding, s=spill: allocate(batch, policy=p, rounding=r, spill=s)
        )
        default = default or elapsed
        label = f"allocate: {policy.value}, {rounding.value}{', spill' if spill else ''}"
        print(f"{label:<50} {lines / elapsed:>12,.0f} lines/s   {naive / elapsed:6.1%} of naive")
    assert default is not None
    verdict = "PASS" if lines / default >= GOAL_LINES_PER_SECOND else "MISS"
    print(f"{verdict}: default rules at {lines / default:,.0f} lines/s (goal ≥ {GOAL_LINES_PER_SECOND:,})")


if __name__ == "__main__":
    main()
