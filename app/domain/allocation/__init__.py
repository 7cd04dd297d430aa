"""Allocation when stock is short (PRODUCT.md): who gets how many packs, from which lots and locations.

Quantities first (`allocate`, `allocate_product`), then lots and locations (`place_allocation`).
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
