"""Allocation when stock is short (PRODUCT.md): who gets how many packs, from which lots and locations.

Quantities first (`allocate`, `allocate_product`), then lots and locations (`place_allocation`).

Where PRODUCT.md is silent, these readings were chosen (review them with the dispatch screen):
- Spill: without it, packs a capped destination leaves go to the others of its tier; with it, they go
  down to the next tiers (filled to their caps), and the split tier keeps what those cannot take.
- "Grant whole minimums in order until packs run out": in (tier, need desc, code) order; the one
  reached when packs run out gets a partial minimum (reason `minimum_partial`).
- Minimums first: every minimum, then the rest shared by weight on top, up to the caps.
- Quota: the percentages weigh what the split tier shares (not a percent of all supply); none given
  means an even split.
- Strict priority still grants the minimums first (the invariants hold for every policy); spill does
  not apply to it.
- A zero weight keeps its minimum until every weighted destination is full, then shares evenly.
- Eaches (products that allow loose units): handed out after the packs, in priority order, within
  need and max.
- A lot is still good on its expiry date; any piece with an earlier date is never picked.
- FEFO/FIFO first; within the same expiry (or receipt date), one location covering the line, else
  the fewest locations (largest first), ties by pick path; larger lines choose first.
- Sainte-Laguë uses each policy's weights (above the minimum under minimums first); the explanation
  still shows the water-filling quota, so its rounding step may be negative.
"""

from app.domain.allocation.explain import Explanation, ProductAllocation, Reason, Shortage
from app.domain.allocation.model import Demand, Policy, ProductRequest, Rounding, Supply
from app.domain.allocation.placement import Pick, Placement, StockPiece, place_allocation, usable_units
from app.domain.allocation.split import allocate, allocate_product, priority

__all__ = [
    "Demand",
    "Explanation",
    "Pick",
    "Placement",
    "Policy",
    "ProductAllocation",
    "ProductRequest",
    "Reason",
    "Rounding",
    "Shortage",
    "StockPiece",
    "Supply",
    "allocate",
    "allocate_product",
    "place_allocation",
    "priority",
    "usable_units",
]
