"""Dispatch orders: create one, correct one no stock was reserved for yet, release a draft, cancel one.

One function per use case, one transaction each, its idempotency key stored with its answer. The
transitions lock the order row (SELECT … FOR UPDATE) and ask the pure state machine of
app/domain/orders.py whether the move is allowed; a refusal names the order and says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import live
from app.db.live import Topic
from app.db.models import Destination, DispatchOrder, DispatchOrderLine, Site
from app.db.models.orders import ORDER_SOURCES
from app.db.queries.orders import OrderDetail, order_detail
from app.db.queries.stock_search import MIN_FRAGMENT, StockRow, search_stock
from app.db.session import Database, driver
from app.domain.orders import (
    LineProgress,
    OrderState,
    TransitionRefused,
    check_cancel,
    check_edit,
    check_hold,
    check_release,
    order_number,
)
from app.services import idempotency, journal
from app.services.dispatch_runs import hold_site_dispatch
from app.services.errors import Invalid, NotFound, Refused
from app.services.reservations import release_tasks
from app.services.stock import ProductRef, find_product
from app.services.users import Actor

# 28 characters at most: a backorder adds "-R<n>" to the number, within the column's 32.
NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,27}$")
MAX_LINES = 500
MAX_QUANTITY = 1_000_000  # units per line: far above any real order, far below the integer columns
MAX_PRIORITY = 99
MAX_RELEASE = 500  # orders released at once from the list: a page of drafts, ticked
END_OF_DAY = time(23, 59)  # a due date given without its time: the end of that day at the site
# Every order creation takes this lock, so that a generated number and a given one cannot collide.
NUMBERS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('dispatch_orders.number', 0))"


class ChangedMeanwhile(Refused):
    """The order changed since the person drew the form they correct it with."""

    status = 409
    title = "Changed meanwhile"


@dataclass(frozen=True)
class OrderLineData:
    product: str  # SKU or GTIN
    quantity: int  # units, whatever code names the product


@dataclass(frozen=True)
class OrderData:
    """An order as a form, a request or a file gives it."""

    site_id: int
    destination: str  # code
    due_at: datetime  # aware
    lines: tuple[OrderLineData, ...]
    priority: int | None = None  # default: the destination's tier
    number: str | None = None  # default: CMD-<site's day>-<next>
    source: str = "screen"
    release: bool = False  # released at once: its demand joins the next dispatch run


@dataclass(frozen=True)
class NewOrder:
    """An order ready to write: every reference resolved and checked."""

    number: str
    site_id: int
    destination_id: int
    priority: int
    due_at: datetime
    source: str
    release: bool
    lines: tuple[tuple[int, int], ...]  # (product id, units), in line order
    created_by: UUID | None = field(default=None)


def scope(actor: Actor) -> str:
    """Whose idempotency keys: one namespace per user, as for stock changes."""
    return str(actor.user_id) if actor.user_id else actor.username


def check_number(number: str) -> str:
    number = number.strip()
    if not NUMBER.match(number):
        raise Invalid(
            "An order number has 1 to 28 letters, digits or . _ - characters.", field="number", number=number
        )
    return number


def check_priority(priority: int) -> int:
    if not 1 <= priority <= MAX_PRIORITY:
        raise Invalid(
            "The priority is a whole number from 1 (served first) to {max}.",
            field="priority",
            max=MAX_PRIORITY,
        )
    return priority


def check_quantity(quantity: int, line: int) -> int:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise Invalid(
            "Line {line}: the quantity is a whole number from 1 to {max}.",
            field="lines",
            line=line,
            max=MAX_QUANTITY,
        )
    return quantity


def due_moment(due: date | datetime, zone: ZoneInfo) -> datetime:
    """A due date as an instant: a naive time is the site's clock, a day alone the end of that day."""
    if isinstance(due, datetime):
        return due if due.tzinfo else due.replace(tzinfo=zone)
    return datetime.combine(due, END_OF_DAY, zone)


def check_order(data: OrderData) -> OrderData:
    """What can be refused before reading anything: the shape of the order and of its lines."""
    number = check_number(data.number) if data.number is not None and data.number.strip() else None
    if data.priority is not None:
        check_priority(data.priority)
    if data.due_at.tzinfo is None:
        raise Invalid("The due date needs a time zone.", field="due_at")
    if data.source not in ORDER_SOURCES:
        raise Invalid("Unknown order source: {source}.", field="source", source=data.source)
    if not data.destination.strip():
        raise Invalid("Choose the destination.", field="destination")
    lines = tuple(OrderLineData(line.product.strip(), line.quantity) for line in data.lines)
    if not lines:
        raise Invalid("An order needs at least one line.", field="lines")
    if len(lines) > MAX_LINES:
        raise Invalid("An order has at most {max} lines.", field="lines", max=MAX_LINES)
    for n, line in enumerate(lines, start=1):
        if not line.product:
            raise Invalid("Line {line}: enter the product (SKU or GTIN).", field="lines", line=n)
        check_quantity(line.quantity, n)
    return OrderData(
        data.site_id,
        data.destination.strip().upper(),
        data.due_at,
        lines,
        data.priority,
        number,
        data.source,
        data.release,
    )


async def create_order(
    db: Database, data: OrderData, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Create an order (draft, or released at once); returns (status, the order as created)."""
    order = check_order(data)
    key = idempotency.check_key(idempotency_key)
    payload = {"op": "create_order", **msgspec.to_builtins(order)}

    async def operation(session: AsyncSession) -> dict[str, Any]:
        destination = await _destination(session, order.destination)
        products = await _products(session, order.lines)
        await (await driver(session)).execute(NUMBERS_LOCK)
        if order.number is None:
            number = await next_number(session, order.site_id, now)
        elif await number_taken(session, [order.number]):
            raise Refused("Order {number} already exists.", number=order.number)
        else:
            number = order.number
        new = NewOrder(
            number,
            order.site_id,
            destination.id,
            order.priority or destination.tier,
            order.due_at,
            order.source,
            order.release,
            tuple((product.id, line.quantity) for product, line in zip(products, order.lines, strict=True)),
            actor.user_id,
        )
        (order_id,) = await insert_orders(session, [new], now)
        await journal.record(
            session,
            "order.created",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            order=number,
            source=order.source,
            state="released" if order.release else "draft",
        )
        return await _answer(session, order_id, now)

    return await idempotency.once(db, scope(actor), key, payload, now, operation)


@dataclass(frozen=True)
class _DestinationRef:
    id: int
    tier: int


async def _destination(session: AsyncSession, code: str) -> _DestinationRef:
    row = (
        await session.execute(
            select(Destination.id, Destination.tier, Destination.is_active).where(Destination.code == code)
        )
    ).first()
    if row is None:
        raise Invalid("Unknown destination: {code}.", field="destination", code=code)
    if not row.is_active:
        raise Invalid("Destination {code} is not in use.", field="destination", code=code)
    return _DestinationRef(row.id, row.tier)


async def _products(session: AsyncSession, lines: Sequence[OrderLineData]) -> list[ProductRef]:
    """Each line's product by SKU or barcode; an unknown one, or one twice, is refused naming its line."""
    found: list[ProductRef] = []
    first_line: dict[int, int] = {}
    for n, line in enumerate(lines, start=1):
        try:
            product = await find_product(session, line.product)
        except NotFound:
            raise Invalid(
                "Line {line}: unknown product {product}.", field="lines", line=n, product=line.product
            ) from None
        first = first_line.setdefault(product.id, n)
        if first != n:
            raise Invalid(
                "Line {line}: product {sku} is already on line {first}.",
                field="lines",
                line=n,
                sku=product.sku,
                first=first,
            )
        found.append(product)
    return found


@dataclass(frozen=True)
class ProductChoice:
    """What a new order's product field names, with the stock at the site: the product the order will
    take (its SKU or one of its barcodes, as `create_order` reads it), or else the products it may mean."""

    typed: str
    found: StockRow | None = None
    choices: tuple[StockRow, ...] = ()

    @property
    def matches_nothing(self) -> bool:
        """Searched (long enough to search by) and found neither the product nor any it may mean."""
        return len(self.typed) >= MIN_FRAGMENT and self.found is None and not self.choices


CHOICES = 5  # products offered for a line: enough to tell similar names apart, short enough to read


async def product_choice(session: AsyncSession, site_id: int, typed: str) -> ProductChoice:
    """The product a line will take, else those in use whose SKU or name holds what was typed (accents
    and case aside), the ones in stock at the site first."""
    typed = typed.strip()
    if not typed:
        return ProductChoice(typed)
    try:
        product = await find_product(session, typed)
    except NotFound:
        pass
    else:  # its stock here: the search by SKU finds it first
        rows = (await search_stock(session, site_id, product.sku, CHOICES)).rows
        return ProductChoice(typed, next((row for row in rows if row.product_id == product.id), None))
    if len(typed) < MIN_FRAGMENT:
        return ProductChoice(typed)
    rows = (await search_stock(session, site_id, typed, CHOICES + 1)).rows
    return ProductChoice(typed, choices=tuple(row for row in rows if row.is_active)[:CHOICES])


_NEXT_NUMBER = """
    SELECT coalesce(max(substring(number FROM $2::int)::int), 0) FROM dispatch_orders
    WHERE number LIKE $1 AND substring(number FROM $2::int) ~ '^[0-9]{1,9}$'
"""


async def next_number(session: AsyncSession, site_id: int, now: datetime) -> str:
    """The next CMD-<day>-<n> of the site's calendar day (the caller holds the numbers lock)."""
    zone = await session.scalar(select(Site.timezone).where(Site.id == site_id))
    if zone is None:
        raise NotFound("Unknown site.")
    day = now.astimezone(ZoneInfo(zone)).date()
    prefix = order_number(day, 0)[:-4]
    last = await (await driver(session)).fetchval(_NEXT_NUMBER, prefix + "%", len(prefix) + 1)
    return order_number(day, int(last) + 1)


async def number_taken(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    """Which of these order numbers exist already."""
    rows = await session.scalars(select(DispatchOrder.number).where(DispatchOrder.number.in_(list(numbers))))
    return set(rows)


async def insert_orders(session: AsyncSession, orders: Sequence[NewOrder], now: datetime) -> list[int]:
    """Write orders and their lines in bulk (in the caller's transaction); `units` is the lines' sum."""
    if not orders:
        return []
    for site_id in {o.site_id for o in orders}:
        live.changed(session, site_id, Topic.ORDERS)
    rows = [
        {
            "number": o.number,
            "site_id": o.site_id,
            "destination_id": o.destination_id,
            "state": OrderState.RELEASED.value if o.release else OrderState.DRAFT.value,
            "priority": o.priority,
            "due_at": o.due_at,
            "source": o.source,
            "units": sum(units for _product, units in o.lines),
            "created_by": o.created_by,
            "released_at": now if o.release else None,
            "created_at": now,
            "updated_at": now,
        }
        for o in orders
    ]
    result = await session.execute(
        insert(DispatchOrder).returning(DispatchOrder.number, DispatchOrder.id), rows
    )
    ids: dict[str, int] = dict(result.all())
    await session.execute(
        insert(DispatchOrderLine),
        [
            {
                "order_id": ids[o.number],
                "line_no": n,
                "product_id": product_id,
                "quantity": units,
                "created_at": now,
                "updated_at": now,
            }
            for o in orders
            for n, (product_id, units) in enumerate(o.lines, start=1)
        ],
    )
    return [ids[o.number] for o in orders]


async def _answer(session: AsyncSession, order_id: int, now: datetime) -> dict[str, Any]:
    """The order as it stands, as JSON: the answer stored with the idempotency key."""
    detail = await order_detail(session, order_id, now)
    if detail is None:  # only if deleted by hand in between
        raise NotFound("Unknown order: {order}.", order=order_id)
    answer: dict[str, Any] = msgspec.to_builtins(detail)
    return answer


# ---------------------------------------------------------------- transitions

_SITE_OF_ORDER = "SELECT site_id FROM dispatch_orders WHERE id = $1"
_LOCK_ORDER = "SELECT number, state, site_id FROM dispatch_orders WHERE id = $1 FOR UPDATE"
_LOCK_LINES = """
    SELECT quantity, allocated, picked, shipped FROM dispatch_order_lines
    WHERE order_id = $1 ORDER BY id FOR UPDATE
"""
_OPEN_TASKS = """
    SELECT t.id FROM pick_tasks t JOIN dispatch_order_lines l ON l.id = t.order_line_id
    WHERE l.order_id = $1 AND t.status = 'open' ORDER BY t.id
"""
_SET_STATE = """
    UPDATE dispatch_orders SET state = $2::text, updated_at = $3,
        released_at = CASE $2::text WHEN 'released' THEN $3 WHEN 'draft' THEN NULL ELSE released_at END
    WHERE id = $1
"""


async def release_order(
    db: Database, order_id: int, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """A draft becomes released: its demand joins the next dispatch run."""
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        number, state = await _lock(session, order_id)
        try:
            check_release(state)
        except TransitionRefused as refused:
            raise _refusal(refused, number) from None
        await (await driver(session)).execute(_SET_STATE, order_id, OrderState.RELEASED.value, now)
        await _journal(session, "order.released", actor, number)
        return {"id": order_id, "number": number, "state": OrderState.RELEASED.value, "released_units": 0}

    return await idempotency.once(
        db, scope(actor), key, {"op": "release_order", "order": order_id}, now, operation
    )


_RELEASE_DRAFTS = """
    UPDATE dispatch_orders SET state = 'released', released_at = $3, updated_at = $3
    WHERE id = ANY($1::bigint[]) AND site_id = $2 AND state = 'draft'
    RETURNING number
"""


async def release_orders(
    db: Database,
    site_id: int,
    order_ids: Sequence[int],
    *,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Release the drafts among these orders of the site at once; the others (released meanwhile, or not
    drafts) are counted and left as they are. One transaction, one journal entry per order released."""
    key = idempotency.check_key(idempotency_key)
    wanted = sorted(set(order_ids))
    if not wanted:
        raise Invalid("Tick the drafts to release.", field="order")
    if len(wanted) > MAX_RELEASE:
        raise Invalid("Release at most {max} orders at once.", field="order", max=MAX_RELEASE)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        numbers = sorted(
            row[0] for row in await (await driver(session)).fetch(_RELEASE_DRAFTS, wanted, site_id, now)
        )
        if numbers:
            live.changed(session, site_id, Topic.ORDERS)
        for number in numbers:
            await _journal(session, "order.released", actor, number)
        return {"released": numbers, "left": len(wanted) - len(numbers)}

    return await idempotency.once(
        db, scope(actor), key, {"op": "release_orders", "site": site_id, "orders": wanted}, now, operation
    )


async def cancel_order(
    db: Database, order_id: int, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Cancel an order not yet picked; the stock its open pick tasks reserved is given back."""
    return await _give_back(
        db, order_id, "cancel_order", check_cancel, "order.cancelled", actor, idempotency_key, now
    )


async def hold_order(
    db: Database, order_id: int, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Put an order nobody is picking on hold: the stock reserved for it is given back and it is a draft
    again, which runs skip until it is released."""
    return await _give_back(db, order_id, "hold_order", check_hold, "order.held", actor, idempotency_key, now)


async def _give_back(
    db: Database,
    order_id: int,
    op: str,  # the use case's name in its idempotency fingerprint (kept as it was for cancel_order)
    check: Callable[[OrderState, list[LineProgress]], OrderState],
    event: str,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Move an order to the state `check` allows, giving back the stock its open pick tasks reserved."""
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        site_id = await pg.fetchval(_SITE_OF_ORDER, order_id)
        if site_id is None:
            raise NotFound("Unknown order: {order}.", order=order_id)
        await hold_site_dispatch(session, site_id)  # no run of the site reserves for it meanwhile
        number, state = await _lock(session, order_id)
        lines = [LineProgress(*row) for row in await pg.fetch(_LOCK_LINES, order_id)]
        try:
            wanted = check(state, lines)
        except TransitionRefused as refused:
            raise _refusal(refused, number) from None
        tasks = [row[0] for row in await pg.fetch(_OPEN_TASKS, order_id)]
        released = await release_tasks(session, tasks, now)
        live.changed(session, site_id, Topic.PICKING, Topic.STOCK)
        await pg.execute(_SET_STATE, order_id, wanted.value, now)
        await _journal(session, event, actor, number, released_units=released.units)
        return {"id": order_id, "number": number, "state": wanted.value, "released_units": released.units}

    return await idempotency.once(db, scope(actor), key, {"op": op, "order": order_id}, now, operation)


_LOCK_FOR_EDIT = """
    SELECT number, state, site_id, destination_id, priority, due_at, updated_at, EXISTS (
        SELECT FROM pick_tasks t JOIN dispatch_order_lines l ON l.id = t.order_line_id WHERE l.order_id = $1
    ) AS ever_reserved
    FROM dispatch_orders WHERE id = $1 FOR UPDATE
"""
_LINES_OF = "SELECT product_id, quantity FROM dispatch_order_lines WHERE order_id = $1 ORDER BY line_no"
_DROP_LINES = "DELETE FROM dispatch_order_lines WHERE order_id = $1"
_ADD_LINES = """
    INSERT INTO dispatch_order_lines (order_id, line_no, product_id, quantity, created_at, updated_at)
    SELECT $1, n, product_id, quantity, $4, $4
    FROM unnest($2::bigint[], $3::int[]) WITH ORDINALITY AS l(product_id, quantity, n)
"""
_SET_HEAD = """
    UPDATE dispatch_orders SET destination_id = $2, priority = $3, due_at = $4, units = $5, updated_at = $6
    WHERE id = $1
"""


async def edit_order(
    db: Database,
    order_id: int,
    data: OrderData,
    *,
    version: datetime | None,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Correct a draft, or a released order no run has reserved for yet: its destination, due time,
    priority and lines (replaced as given). `version` is the `updated_at` the person saw: if the order has
    changed since, nothing is written and the refusal says so. The answer lists the fields changed."""
    order = check_order(data)
    key = idempotency.check_key(idempotency_key)
    payload = {
        "op": "edit_order",
        "order": order_id,
        **msgspec.to_builtins(order),
        "version": version and version.isoformat(),
    }

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        site_id = await pg.fetchval(_SITE_OF_ORDER, order_id)
        if site_id is None or site_id != order.site_id:
            raise NotFound("Unknown order: {order}.", order=order_id)
        await hold_site_dispatch(session, site_id)  # no run of the site reads its lines meanwhile
        head = await pg.fetchrow(_LOCK_FOR_EDIT, order_id)
        number = head["number"]
        try:
            check_edit(OrderState(head["state"]), ever_reserved=head["ever_reserved"])
        except TransitionRefused as refused:
            raise _refusal(refused, number) from None
        if version is not None and head["updated_at"] != version:
            raise ChangedMeanwhile(
                "Order {number} was changed by someone else since you read it.",
                number=number,
                updated_at=head["updated_at"].isoformat(),
            )
        destination = await _destination(session, order.destination)
        products = await _products(session, order.lines)
        lines = [(product.id, line.quantity) for product, line in zip(products, order.lines, strict=True)]
        priority = order.priority or destination.tier
        changed = [
            name
            for name, before, after in (
                ("destination", head["destination_id"], destination.id),
                ("due_at", head["due_at"], order.due_at),
                ("priority", head["priority"], priority),
                ("lines", [tuple(row) for row in await pg.fetch(_LINES_OF, order_id)], lines),
            )
            if before != after
        ]
        if changed:
            live.changed(session, site_id, Topic.ORDERS)
            if "lines" in changed:
                await pg.execute(_DROP_LINES, order_id)
                await pg.execute(_ADD_LINES, order_id, [p for p, _ in lines], [q for _, q in lines], now)
            units = sum(quantity for _product, quantity in lines)
            await pg.execute(_SET_HEAD, order_id, destination.id, priority, order.due_at, units, now)
            await _journal(session, "order.changed", actor, number, changed=changed)
        return {**await _answer(session, order_id, now), "changed": changed}

    return await idempotency.once(db, scope(actor), key, payload, now, operation)


def edit_refusal(order: OrderDetail) -> Refused | None:
    """Why this order can no longer be corrected; None while it can."""
    try:
        check_edit(OrderState(order.state), ever_reserved=order.ever_reserved)
    except TransitionRefused as refused:
        return _refusal(refused, order.number)
    return None


async def _lock(session: AsyncSession, order_id: int) -> tuple[str, OrderState]:
    """Lock an order for a change of state (which its site's boards are told of, if it commits)."""
    row = await (await driver(session)).fetchrow(_LOCK_ORDER, order_id)
    if row is None:
        raise NotFound("Unknown order: {order}.", order=order_id)
    live.changed(session, row["site_id"], Topic.ORDERS)
    return row["number"], OrderState(row["state"])


async def _journal(session: AsyncSession, event: str, actor: Actor, number: str, **detail: Any) -> None:
    await journal.record(
        session, event, actor_id=actor.user_id, actor_name=actor.username, ip=actor.ip, order=number, **detail
    )


def _refusal(refused: TransitionRefused, number: str) -> Refused:
    """Why this order cannot move, in words an operator can act on."""
    facts = {"number": number, "state": refused.state.value}
    if refused.picked and refused.action == "hold":
        return Refused(
            "Order {number} cannot be put on hold: {picked} units are already picked. "
            "Ship them or put them back first.",
            picked=refused.picked,
            **facts,
        )
    if refused.picked:
        return Refused(
            "Order {number} cannot be cancelled: {picked} units are already picked. "
            "Ship them or put them back first.",
            picked=refused.picked,
            **facts,
        )
    if refused.state is OrderState.CANCELLED:
        return Refused("Order {number} is already cancelled.", **facts)
    if refused.state is OrderState.DISPATCHED:
        return Refused("Order {number} has already been dispatched.", **facts)
    if refused.action == "edit":
        return Refused(
            "Order {number} can no longer be edited: stock has already been reserved for it. "
            "Cancel it and enter a new one if it must change.",
            **facts,
        )
    if refused.action == "release":
        return Refused("Order {number} is already released.", **facts)
    if refused.action == "hold" and refused.state is OrderState.DRAFT:
        return Refused("Order {number} is a draft: no run takes it until it is released.", **facts)
    if refused.action == "hold":
        return Refused("Order {number} is being picked: it can no longer be put on hold.", **facts)
    return Refused("Order {number} is being picked: it can no longer be cancelled.", **facts)
