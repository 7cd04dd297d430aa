"""What an order file needs from the database, checked in bulk, and the orders it makes.

Rows sharing an order number form one order: they must agree on its site, destination, due date,
priority and release. An order number already known is skipped when the file says exactly what it
holds (so importing a file twice changes nothing), and refused when the file says something else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Destination, DispatchOrder, DispatchOrderLine, Product, ProductBarcode, Site
from app.db.session import driver
from app.services.errors import N_
from app.services.import_checks import _Found, _site_refused, slices
from app.services.import_rows import OrderRow, Problem, Record
from app.services.orders import MAX_LINES, NUMBERS_LOCK, NewOrder, due_moment

_SAME_ORDER = ("site", "destination", "due", "priority", "release")


@dataclass(frozen=True)
class OrdersReady:
    rows: int
    orders: list[NewOrder]
    unchanged: int  # orders of the file already there, exactly as the file says


class _OrderFacts:
    """Sites, destinations, products and existing orders named by a file, loaded in a few queries."""

    def __init__(self) -> None:
        self.sites: dict[str, int] = {}
        self.zones: dict[int, ZoneInfo] = {}
        self.destinations: dict[str, tuple[int, int, bool]] = {}  # code → id, tier, active
        self.products: dict[str, tuple[int, str]] = {}  # SKU or barcode → id, SKU
        self.existing: dict[str, tuple[int, int, datetime, int, dict[int, int]]] = {}

    async def load(self, session: AsyncSession, rows: list[OrderRow]) -> None:
        for code, site_id, zone in await session.execute(select(Site.code, Site.id, Site.timezone)):
            self.sites[code], self.zones[site_id] = site_id, ZoneInfo(zone)
        codes = sorted({row.destination for row in rows})
        for part in slices(codes):
            found = await session.execute(
                select(Destination.code, Destination.id, Destination.tier, Destination.is_active).where(
                    Destination.code.in_(part)
                )
            )
            self.destinations.update({code: (did, tier, active) for code, did, tier, active in found})
        references = sorted({row.sku for row in rows})
        for part in slices(references):
            by_sku = await session.execute(
                select(Product.sku, Product.id).where(Product.sku.in_(part), Product.is_active)
            )
            by_code = await session.execute(
                select(ProductBarcode.code, Product.id, Product.sku)
                .join(Product, Product.id == ProductBarcode.product_id)
                .where(ProductBarcode.code.in_(part), Product.is_active)
            )
            self.products.update({code: (pid, sku) for code, pid, sku in by_code})
            self.products.update({sku: (pid, sku) for sku, pid in by_sku})  # a SKU wins over a barcode
        await self._existing(session, sorted({row.order for row in rows}))

    async def _existing(self, session: AsyncSession, numbers: list[str]) -> None:
        for part in slices(numbers):
            orders = await session.execute(
                select(
                    DispatchOrder.number,
                    DispatchOrder.id,
                    DispatchOrder.site_id,
                    DispatchOrder.destination_id,
                    DispatchOrder.due_at,
                    DispatchOrder.priority,
                ).where(DispatchOrder.number.in_(part))
            )
            by_id = {oid: (number, site, dest, due, prio) for number, oid, site, dest, due, prio in orders}
            lines: dict[int, dict[int, int]] = defaultdict(dict)
            for ids in slices(sorted(by_id)):
                found = await session.execute(
                    select(
                        DispatchOrderLine.order_id, DispatchOrderLine.product_id, DispatchOrderLine.quantity
                    ).where(DispatchOrderLine.order_id.in_(ids))
                )
                for order_id, product_id, quantity in found:
                    lines[order_id][product_id] = quantity
            for oid, (number, site, dest, due, prio) in by_id.items():
                self.existing[number] = (site, dest, due, prio, lines[oid])


async def check_orders(
    session: AsyncSession,
    rows: list[tuple[int, Record]],
    headers: dict[str, str],
    allowed: frozenset[int] | None,
    created_by: UUID | None,
) -> tuple[list[Problem], OrdersReady]:
    """Every row's references, every order's consistency; returns the new orders ready to write.

    Takes the order-numbers lock first: no order of the file can be created by someone else meanwhile.
    """
    await (await driver(session)).execute(NUMBERS_LOCK)
    found = _Found(headers)
    lines = [(row, line) for row, line in rows if isinstance(line, OrderRow)]
    facts = _OrderFacts()
    await facts.load(session, [line for _row, line in lines])
    by_order: dict[str, list[tuple[int, OrderRow]]] = defaultdict(list)
    for row, line in lines:
        by_order[line.order].append((row, line))
    ready, unchanged = [], 0
    for number, order_rows in by_order.items():
        order = _order(found, number, order_rows, facts, allowed, created_by)
        if order is None:
            continue
        if number not in facts.existing:
            ready.append(order)
        elif _same(order, facts.existing[number], priority_given=order_rows[0][1].priority is not None):
            unchanged += 1
        else:
            found.add(
                order_rows[0][0],
                "order",
                N_("Order {order} already exists with other content."),
                order=number,
            )
    return found.problems, OrdersReady(len(lines), ready, unchanged)


def _order(
    found: _Found,
    number: str,
    rows: list[tuple[int, OrderRow]],
    facts: _OrderFacts,
    allowed: frozenset[int] | None,
    created_by: UUID | None,
) -> NewOrder | None:
    """One order from its rows, or None with its problems noted."""
    before = len(found.problems)
    first_row, first = rows[0]
    for row, line in rows[1:]:
        for column in _SAME_ORDER:
            if getattr(line, column) != getattr(first, column):
                found.add(
                    row,
                    column,
                    N_("Order {order}: each row must give the same {field} as row {row}."),
                    order=number,
                    field=found.headers.get(column, column),
                    row=first_row,
                )
                break
    if len(rows) > MAX_LINES:
        found.add(first_row, "order", N_("An order has at most {max} lines."), max=MAX_LINES)
    site_id = (
        None if _site_refused(found, first_row, first.site, facts.sites, allowed) else facts.sites[first.site]
    )
    destination = facts.destinations.get(first.destination)
    if destination is None:
        found.add(first_row, "destination", N_("Unknown destination: {code}."), code=first.destination)
    elif not destination[2]:
        found.add(first_row, "destination", N_("Destination {code} is not in use."), code=first.destination)
    products: list[tuple[int, int]] = []
    seen: dict[int, int] = {}
    for row, line in rows:
        product = facts.products.get(line.sku)
        if product is None:
            found.add(row, "sku", N_("Unknown product: {product}."), product=line.sku)
            continue
        first_seen = seen.setdefault(product[0], row)
        if first_seen != row:  # one product named by its SKU here and by its GTIN there
            found.add(
                row,
                "sku",
                N_("{sku} is already ordered in row {row} of order {order}."),
                sku=product[1],
                row=first_seen,
                order=number,
            )
        products.append((product[0], line.quantity))
    if len(found.problems) > before or site_id is None or destination is None or first.due is None:
        return None
    return NewOrder(
        number,
        site_id,
        destination[0],
        first.priority or destination[1],
        due_moment(first.due, facts.zones[site_id]),
        "import",
        first.release,
        tuple(products),
        created_by,
    )


def _same(
    order: NewOrder, existing: tuple[int, int, datetime, int, dict[int, int]], *, priority_given: bool
) -> bool:
    """The file says what the database holds: the priority only when the file gives one, the state
    never (an order released or picked since its import is still the order the file describes)."""
    site_id, destination_id, due_at, priority, lines = existing
    return (
        (site_id, destination_id, due_at) == (order.site_id, order.destination_id, order.due_at)
        and dict(order.lines) == lines
        and (not priority_given or order.priority == priority)
    )
