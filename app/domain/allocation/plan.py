"""A dispatch run's plan: from open order lines and available stock to explained shares and pick tasks.

The allocation engine splits each product between destinations; a destination may have several open
orders of one product, so its demand is the sum of their lines' needs, at the most urgent of their
tiers. Once its units are placed on lots and locations, they are handed to its lines in order of
urgency: tier, due time, order number, line number. Readings where PRODUCT.md is silent:
- an order's priority is its tier (an order takes its destination's tier unless given another);
- a destination's min and max apply per product and per run, whatever its number of orders;
- units above the lines' needs (a pack rounded up) go to the last line served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from app.domain.allocation.explain import ProductAllocation
from app.domain.allocation.model import Demand, Policy, ProductRequest, Rounding, Supply
from app.domain.allocation.placement import StockPiece, take_pieces, usable_units
from app.domain.allocation.split import allocate


class OpenLine(NamedTuple):
    """An order line with need left, and what ranks it among its destination's lines.

    A named tuple, like `Task`: a run reads one per open line (some 100,000), and a named tuple costs a
    third of a frozen dataclass to build.
    """

    line_id: int
    order_id: int
    order_number: str
    priority: int
    due_at: datetime
    line_no: int
    product_id: int
    destination_id: int
    need: int

    def urgency(self) -> tuple[int, datetime, str, int, int]:
        """Most urgent first; the line id last, so equal lines never depend on the order they came in."""
        return (self.priority, self.due_at, self.order_number, self.line_no, self.line_id)


@dataclass(frozen=True, slots=True)
class ProductTerms:
    product_id: int
    sku: str
    pack_size: int
    round_up: bool
    allow_eaches: bool
    expiry_tracked: bool
    holdback: int = 0  # units left unreserved at the site (safety stock)


@dataclass(frozen=True, slots=True)
class DestinationTerms:
    destination_id: int
    code: str
    min_units: int | None
    max_units: int | None
    quota_percent: Decimal | None


class StockAt(NamedTuple):
    """Available units of a product at one storage location, in one lot (a named tuple, like `OpenLine`)."""

    product_id: int
    location_id: int
    location_code: str
    zone: str
    pick_seq: int
    lot_id: int | None
    lot_code: str | None
    expiry: date | None
    received_on: date
    available: int


class Task(NamedTuple):
    """Reserve and pick `units` at one location and lot for one order line.

    A named tuple rather than a frozen dataclass, like `Explanation`: as immutable, and a third of the
    cost to build; a run builds one per pick (some 100,000 for 100,000 lines).
    """

    line_id: int
    product_id: int
    location_id: int
    lot_id: int | None
    zone: str
    pick_seq: int
    units: int


@dataclass(frozen=True)
class Plan:
    allocations: tuple[ProductAllocation, ...]  # per product (supply.product is the SKU), explained
    tasks: tuple[Task, ...]

    @property
    def units_allocated(self) -> int:
        return sum(task.units for task in self.tasks)


def parts_by_product(
    lines: Iterable[OpenLine], stock: Iterable[StockAt], max_lines: int
) -> list[tuple[list[OpenLine], list[StockAt]]]:
    """A run's lines and stock cut into parts of whole products, in product order, each closed once it
    holds `max_lines` lines or more (a product's lines are never split; stock no line asks for is left
    out, as the plan ignores it).

    A product's share and placement depend on its own lines and stock only (a destination's limits apply
    per product), so the plans of the parts together are the plan of the whole: a large run can be
    planned part by part while the database writes the parts already planned.
    """
    lines_of: dict[int, list[OpenLine]] = {}
    for line in lines:
        lines_of.setdefault(line.product_id, []).append(line)
    stock_of: dict[int, list[StockAt]] = {}
    for piece in stock:
        stock_of.setdefault(piece.product_id, []).append(piece)
    parts: list[tuple[list[OpenLine], list[StockAt]]] = []
    part_lines: list[OpenLine] = []
    part_stock: list[StockAt] = []
    for product_id in sorted(lines_of):
        part_lines.extend(lines_of[product_id])
        part_stock.extend(stock_of.get(product_id, ()))
        if len(part_lines) >= max_lines:
            parts.append((part_lines, part_stock))
            part_lines, part_stock = [], []
    if part_lines:
        parts.append((part_lines, part_stock))
    return parts


def plan_dispatch(
    lines: Iterable[OpenLine],
    products: Mapping[int, ProductTerms],
    destinations: Mapping[int, DestinationTerms],
    stock: Iterable[StockAt],
    *,
    policy: Policy,
    rounding: Rounding,
    spill: bool,
    today: date,
) -> Plan:
    """Split every product's available stock between the open lines, and say where to pick it."""
    by_product: dict[int, dict[int, list[OpenLine]]] = {}
    for line in lines:
        by_product.setdefault(line.product_id, {}).setdefault(line.destination_id, []).append(line)
    held: dict[int, list[StockAt]] = {}
    for piece in stock:
        held.setdefault(piece.product_id, []).append(piece)
    pieces = {product_id: _pieces(rows) for product_id, rows in held.items()}
    # A destination's terms as its demands carry them, once per destination (not once per product).
    terms_of = {
        destination_id: (
            terms.code,
            terms.min_units,
            terms.max_units,
            None if terms.quota_percent is None else Fraction(terms.quota_percent),
        )
        for destination_id, terms in destinations.items()
    }
    requests = [
        _request(products[product_id], terms_of, demand, pieces.get(product_id, []), today)
        for product_id, demand in by_product.items()
    ]
    allocations = allocate(requests, policy=policy, rounding=rounding, spill=spill)
    sku_to_id = {products[product_id].sku: product_id for product_id in by_product}
    code_to_id = {terms.code: terms.destination_id for terms in destinations.values()}
    tasks: list[Task] = []
    for allocation in allocations:
        product_id = sku_to_id[allocation.supply.product]
        tasks.extend(
            _tasks(
                allocation,
                by_product[product_id],
                code_to_id,
                held.get(product_id, []),
                pieces.get(product_id, []),
                today,
            )
        )
    return Plan(allocations, tuple(tasks))


# A destination's code, min and max units and quota, as `Demand` takes them.
_DestinationTerms = tuple[str, int | None, int | None, Fraction | None]


def _request(
    terms: ProductTerms,
    destinations: Mapping[int, _DestinationTerms],
    demand: Mapping[int, list[OpenLine]],
    pieces: Sequence[StockPiece],
    today: date,
) -> ProductRequest:
    supply = Supply(
        product=terms.sku,
        pack_size=terms.pack_size,
        available_units=usable_units(pieces, today),
        round_up=terms.round_up,
        allow_eaches=terms.allow_eaches,
        expiry_tracked=terms.expiry_tracked,
        holdback=terms.holdback,
    )
    demands = []
    for destination_id, lines in demand.items():
        code, min_units, max_units, quota = destinations[destination_id]
        if len(lines) == 1:  # the common case: one open line of the product for the destination
            tier, need = lines[0].priority, lines[0].need
        else:
            tier, need = min(line.priority for line in lines), sum(line.need for line in lines)
        demands.append(Demand(code, tier, need, min_units, max_units, None, quota))
    return ProductRequest(supply, tuple(demands))


def _pieces(stock: Iterable[StockAt]) -> list[StockPiece]:
    return [
        StockPiece(s.location_code, s.pick_seq, s.lot_code, s.expiry, s.received_on, s.available)
        for s in stock
    ]


def _tasks(
    allocation: ProductAllocation,
    demand: Mapping[int, list[OpenLine]],
    code_to_id: Mapping[str, int],
    stock: Sequence[StockAt],
    pieces: Sequence[StockPiece],
    today: date,
) -> list[Task]:
    """Place the product's units on lots and locations, then hand each destination's picks to its lines."""
    units = {code: n for code, n in allocation.units_by_destination().items() if n}
    if not units:
        return []
    taken, _ = take_pieces(units, pieces, today, expiry_tracked=allocation.supply.expiry_tracked)
    tasks: list[Task] = []
    for code, takes in taken.items():
        lines = demand[code_to_id[code]]
        # `takes` index the pieces, which are the stock rows in the same order.
        if len(lines) == 1:  # everything goes to the one line (a rounded-up pack included)
            line_id = lines[0].line_id
            for i, n in takes:  # a plain loop: most take one piece, less than a comprehension costs
                s = stock[i]
                tasks.append(Task(line_id, s.product_id, s.location_id, s.lot_id, s.zone, s.pick_seq, n))
        else:
            picks = [(stock[i], n) for i, n in takes]
            tasks.extend(_share_among_lines(sorted(lines, key=OpenLine.urgency), picks))
    return tasks


def _share_among_lines(lines: Sequence[OpenLine], picks: Sequence[tuple[StockAt, int]]) -> list[Task]:
    """Most urgent line first; what exceeds every need (a rounded-up pack) goes to the last line."""
    tasks: list[Task] = []
    index, left = 0, lines[0].need
    for piece, units in picks:
        while units:
            last = index == len(lines) - 1
            take = units if last else min(units, left)
            if take:
                tasks.append(
                    Task(
                        lines[index].line_id,
                        piece.product_id,
                        piece.location_id,
                        piece.lot_id,
                        piece.zone,
                        piece.pick_seq,
                        take,
                    )
                )
            units -= take
            left -= take
            if left <= 0 and not last:
                index += 1
                left = lines[index].need
    return tasks


def fingerprint(
    lines: Iterable[OpenLine],
    products: Mapping[int, ProductTerms],
    destinations: Mapping[int, DestinationTerms],
    stock: Iterable[StockAt],
    today: date,
) -> str:
    """What a run's result depends on, as a digest: a commit refuses inputs other than those previewed."""
    digest = hashlib.sha256(today.isoformat().encode())
    for line in sorted(lines, key=lambda line: line.line_id):
        digest.update(
            f"L{line.line_id},{line.product_id},{line.destination_id},{line.priority},{line.need};".encode()
        )
    for terms in sorted(products.values(), key=lambda t: t.product_id):
        digest.update(f"P{terms!r};".encode())
    for dest in sorted(destinations.values(), key=lambda d: d.destination_id):
        digest.update(f"D{dest!r};".encode())
    for s in sorted(stock, key=lambda s: (s.product_id, s.location_id, s.lot_id or 0)):
        digest.update(f"S{s.product_id},{s.location_id},{s.lot_id},{s.available},{s.expiry};".encode())
    return digest.hexdigest()
