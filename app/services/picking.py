"""Picking: taking a pick list, giving it back or handing it over, and confirming each task.

Each use case is one transaction with its idempotency key. Locks are taken in one order everywhere:
the idempotency key, the pick list, its task, the balance keys (as every stock change takes them),
then the order lines and orders. Two operators taking one list race on a conditional update: the
second finds it taken and is told by whom.

A confirmation moves what was found from the task's location to the site's dispatch dock (a `pick`
movement, which consumes that much of the reservation). What was not found is a short pick: its
reservation is released, the order line's need grows back by as much, and the next dispatch run
allocates it again, from other stock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import live
from app.db.live import Topic
from app.db.session import Database, driver
from app.domain.ledger import Balance, Movement, MovementKind, StockKey
from app.domain.picking import PickProblem, PickScan, PickTarget, Scanned, check_pick, settle
from app.domain.scan import classify_scan
from app.services import idempotency, journal
from app.services.errors import N_, Invalid, NotFound, Refused
from app.services.order_progress import refresh_order_states
from app.services.reservations import change_reserved
from app.services.stock import (
    MAX_QUANTITY,
    Actor,
    LocationRef,
    apply_movements_locked,
    find_location,
    find_product,
    lock_balances,
)


class WrongPick(Invalid):
    """A scan or a confirmation that does not fit the task; `problem` names which check failed."""

    status = 422
    title = "Wrong pick"


class ListTaken(Refused):
    status = 409
    title = "Pick list taken"


PROBLEM_MESSAGES = {
    PickProblem.WRONG_LOCATION: N_("Wrong location: this task is at {expected}, you scanned {scanned}."),
    PickProblem.WRONG_PRODUCT: N_("Wrong product: this task is for {expected}, you scanned {scanned}."),
    PickProblem.LOT_MISSING: N_("Product {sku} is tracked by lot: scan the label of lot {expected}."),
    PickProblem.WRONG_LOT: N_("Wrong lot: this task is for lot {expected}, you scanned {scanned}."),
    PickProblem.EXPIRED_LOT: N_("Lot {lot} expired on {expiry}: do not pick it."),
    PickProblem.TOO_MANY: N_("This task asks for {quantity}, you keyed {picked}: put the rest back."),
}
PROBLEM_FIELDS = {
    PickProblem.WRONG_LOCATION: "location",
    PickProblem.WRONG_PRODUCT: "product",
    PickProblem.LOT_MISSING: "lot",
    PickProblem.WRONG_LOT: "lot",
    PickProblem.EXPIRED_LOT: "lot",
    PickProblem.TOO_MANY: "quantity",
}


@dataclass(frozen=True)
class PickConfirmation:
    """What the operator scanned and keyed for one task. `quantity` below the task's is a short pick."""

    location: str  # code or barcode
    product: str  # SKU, GTIN or GS1 element string (its lot is used); empty when nothing was found
    lot: str | None
    quantity: int


@dataclass(frozen=True)
class TaskContext:
    """A task with what checking and confirming it needs to know."""

    id: int
    status: str
    pick_list_id: int
    list_number: str
    list_status: str
    taken_by: UUID | None
    taken_by_name: str | None
    site_id: int
    site_zone: str
    order_line_id: int
    order_id: int
    lot_id: int | None
    lot_tracked: bool
    target: PickTarget

    def today(self, now: datetime) -> date:
        """The date at the site: a lot is good through its expiry day there."""
        return now.astimezone(ZoneInfo(self.site_zone)).date()


_TASK = """
    SELECT t.id, t.status, t.pick_list_id, pl.number, pl.status, pl.taken_by, u.full_name, pl.site_id,
           s.timezone, t.order_line_id, ol.order_id, t.lot_id, p.lot_tracked,
           t.location_id, loc.code, t.product_id, p.sku, lot.code, lot.expiry, t.quantity
    FROM pick_tasks t
    JOIN pick_lists pl ON pl.id = t.pick_list_id
    JOIN sites s ON s.id = pl.site_id
    JOIN locations loc ON loc.id = t.location_id
    JOIN products p ON p.id = t.product_id
    JOIN dispatch_order_lines ol ON ol.id = t.order_line_id
    LEFT JOIN lots lot ON lot.id = t.lot_id
    LEFT JOIN users u ON u.id = pl.taken_by
    WHERE t.id = $1
"""
_LOCK_LIST_OF_TASK = """
    SELECT pl.id FROM pick_lists pl JOIN pick_tasks t ON t.pick_list_id = pl.id WHERE t.id = $1
    FOR UPDATE OF pl
"""
_LOCK_TASK = "SELECT id FROM pick_tasks WHERE id = $1 FOR UPDATE"


async def load_task(session: AsyncSession, task_id: int, site_ids: Collection[int] | None) -> TaskContext:
    """A task of one of `site_ids` (None: any site), or NotFound."""
    row = await (await driver(session)).fetchrow(_TASK, task_id)
    if row is None or (site_ids is not None and row[7] not in site_ids):
        raise NotFound("Unknown pick task: {task}.", task=task_id)
    target = PickTarget(row[13], row[14], row[15], row[16], row[17], row[18], row[19])
    return TaskContext(
        id=row[0],
        status=row[1],
        pick_list_id=row[2],
        list_number=row[3],
        list_status=row[4],
        taken_by=row[5],
        taken_by_name=row[6],
        site_id=row[7],
        site_zone=row[8],
        order_line_id=row[9],
        order_id=row[10],
        lot_id=row[11],
        lot_tracked=row[12],
        target=target,
    )


async def _locked_task(session: AsyncSession, task_id: int, site_ids: Collection[int] | None) -> TaskContext:
    """The task with its list locked (list first, then task: the order every picking change takes)."""
    pg = await driver(session)
    await pg.execute(_LOCK_LIST_OF_TASK, task_id)
    await pg.execute(_LOCK_TASK, task_id)
    return await load_task(session, task_id, site_ids)


# ---------------------------------------------------------------- checking scans


async def resolve_location(session: AsyncSession, site_id: int, text: str) -> Scanned:
    """A scanned location of the site by code or barcode (keyed in lower case too); unknown: id None."""
    text = text.strip()
    for candidate in dict.fromkeys((text, text.upper())):
        try:
            location: LocationRef = await find_location(session, site_id, candidate)
        except NotFound:
            continue
        except Refused:  # a location not in use is not where any task is
            return Scanned(text, None)
        return Scanned(text, location.id)
    return Scanned(text, None)


async def resolve_product(session: AsyncSession, raw: str) -> tuple[Scanned, str | None]:
    """A scanned product (SKU, GTIN or GS1 label) and the lot its label carries, if any."""
    scan = classify_scan(raw)
    if scan.kind == "location":
        raise Invalid("This is a location: scan a product.", field="product")
    if scan.kind == "invalid_gtin":
        raise Invalid("{code} is not a valid barcode: scan it again.", field="product", code=scan.value)
    lot = None
    reference = scan.value
    if scan.kind == "gs1":
        if scan.gs1 is None or scan.gs1.gtin is None:
            raise Invalid("This label carries no product code: scan the product.", field="product")
        reference, lot = scan.gs1.gtin, scan.gs1.lot
    for candidate in dict.fromkeys((reference, reference.upper())):
        try:
            product = await find_product(session, candidate)
        except NotFound:
            continue
        return Scanned(product.sku, product.id), lot
    raise NotFound("Unknown product: {product}.", product=reference)


def refuse(problem: PickProblem, task: TaskContext, scan: PickScan) -> WrongPick:
    """The refusal of one failed check, with the facts its message needs."""
    target = task.target
    facts: dict[str, Any] = {"problem": problem.value, "task": task.id}
    if problem is PickProblem.WRONG_LOCATION:
        facts |= {"expected": target.location, "scanned": scan.location.text if scan.location else ""}
    elif problem is PickProblem.WRONG_PRODUCT:
        facts |= {"expected": target.sku, "scanned": scan.product.text if scan.product else ""}
    elif problem is PickProblem.LOT_MISSING:
        facts |= {"sku": target.sku, "expected": target.lot or ""}
    elif problem is PickProblem.WRONG_LOT:
        facts |= {"expected": target.lot or "", "scanned": scan.lot or ""}
    elif problem is PickProblem.EXPIRED_LOT:
        facts |= {"lot": target.lot or "", "expiry": target.expiry}
    else:
        facts |= {"quantity": target.quantity, "picked": scan.quantity or 0}
    return WrongPick(PROBLEM_MESSAGES[problem], field=PROBLEM_FIELDS[problem], **facts)


async def read_scan(
    session: AsyncSession,
    task: TaskContext,
    *,
    location: str | None = None,
    product: str | None = None,
    lot: str | None = None,
    quantity: int | None = None,
) -> PickScan:
    """What was scanned so far, resolved against the site's locations and the catalogue."""
    scanned_location = await resolve_location(session, task.site_id, location) if location else None
    scanned_product, label_lot = (None, None)
    if product:
        scanned_product, label_lot = await resolve_product(session, product)
    lot = (label_lot or lot or "").strip() or None
    if lot is not None and not task.lot_tracked:
        lot = None  # a GS1 label may carry a lot the warehouse does not track: nothing to compare
    return PickScan(scanned_location, scanned_product, lot, quantity)


def check_scan(task: TaskContext, scan: PickScan, now: datetime) -> None:
    """Raise the refusal of the first check the scan fails (location, product, lot, expiry, quantity)."""
    problem = check_pick(task.target, scan, task.today(now))
    if problem is not None:
        raise refuse(problem, task, scan)


# ---------------------------------------------------------------- confirming a task


async def confirm_pick(
    db: Database,
    task_id: int,
    confirmation: PickConfirmation,
    *,
    site_ids: Collection[int] | None,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Record one task: found units to the dock, the rest released as a short pick. Replays change nothing."""
    if not 0 <= confirmation.quantity <= MAX_QUANTITY:
        raise Invalid("The quantity must be a whole number, 0 or more.", field="quantity")
    key = idempotency.check_key(idempotency_key)
    payload = {"task": task_id, **asdict(confirmation)}

    async def operation(session: AsyncSession) -> dict[str, Any]:
        task = await _locked_task(session, task_id, site_ids)
        if task.status == "released":  # its order cancelled, or its run undone, meanwhile
            raise Refused("This task was cancelled: its stock is no longer reserved for it.", task=task.id)
        if task.status != "open":
            raise Refused("This task is already done ({status}).", status=task.status, task=task.id)
        await _hold_list(session, task, actor, now)
        if confirmation.quantity and not confirmation.product.strip():
            raise Invalid("Scan the product.", field="product")
        if not confirmation.location.strip():
            raise Invalid("Scan the location first.", field="location")
        scan = await read_scan(
            session,
            task,
            location=confirmation.location,
            product=confirmation.product if confirmation.quantity else None,
            lot=confirmation.lot,
            quantity=confirmation.quantity,
        )
        if scan.product is None and confirmation.quantity:
            raise Invalid("Scan the product.", field="product")
        check_scan(task, scan, now)
        return await _record(session, task, confirmation.quantity, actor, now)

    return await idempotency.once(db, actor.scope, key, payload, now, operation)


def closed_list(status: str, number: str) -> Refused | None:
    """Why nobody can take, give back or pick a list any more: it is finished, or it was cancelled."""
    if status == "done":
        return Refused("Pick list {number} is finished.", number=number)
    if status == "cancelled":
        return Refused("Pick list {number} was cancelled: nothing on it is left to pick.", number=number)
    return None


async def _hold_list(session: AsyncSession, task: TaskContext, actor: Actor, now: datetime) -> None:
    """The task's list must be the actor's: an open list is taken by confirming one of its tasks."""
    if refusal := closed_list(task.list_status, task.list_number):
        raise refusal
    if task.list_status == "taken" and task.taken_by != actor.user_id:
        raise ListTaken(
            "Pick list {number} is being picked by {name}.",
            number=task.list_number,
            name=task.taken_by_name or "?",
        )
    if task.list_status == "open":
        await (await driver(session)).execute(_TAKE_LIST, task.pick_list_id, actor.user_id, now)
        await _orders_follow(
            session, task.pick_list_id, task.site_id, now
        )  # every order on the list is being picked


async def _record(
    session: AsyncSession, task: TaskContext, picked: int, actor: Actor, now: datetime
) -> dict[str, Any]:
    pg = await driver(session)
    outcome = settle(task.target.quantity, picked)
    live.changed(session, task.site_id, Topic.PICKING, Topic.ORDERS, Topic.STOCK)
    dock = await dispatch_dock(session, task.site_id)
    source = StockKey(task.target.product_id, task.target.location_id, task.lot_id)
    target = StockKey(task.target.product_id, dock.id, task.lot_id)
    balances = await lock_balances(session, [source, target])
    if outcome.short:
        await change_reserved(session, {source: -outcome.short}, now)
        current = balances[source]
        balances[source] = Balance(current.on_hand, current.reserved - outcome.short)
    movements: list[int] = []
    if outcome.picked:
        movement = Movement(
            MovementKind.PICK,
            task.target.product_id,
            task.lot_id,
            task.target.location_id,
            dock.id,
            outcome.picked,
        )
        answer = await apply_movements_locked(
            session,
            [movement],
            {task.target.location_id: task.target.location, dock.id: dock.code},
            actor,
            now,
            reason=None,
            document=task.list_number,
            locked=balances,
        )
        movements = answer["movements"]
    await pg.execute(_FINISH_TASK, task.id, outcome.status, outcome.picked, outcome.short, actor.user_id, now)
    await pg.execute(
        _LINE_PICKED, task.order_line_id, task.target.quantity, outcome.picked, outcome.short, now
    )
    list_status = await pg.fetchval(_FINISH_LIST_IF_DONE, task.pick_list_id, now)
    states = await refresh_order_states(session, [task.order_id], now)
    return {
        "task": task.id,
        "pick_list": task.pick_list_id,
        "status": outcome.status,
        "picked": outcome.picked,
        "short": outcome.short,
        "list_status": list_status,
        "order": task.order_id,
        "order_state": states[task.order_id].value,
        "movements": movements,
    }


_TAKE_LIST = """
    UPDATE pick_lists SET status = 'taken', taken_by = $2, taken_at = $3, updated_at = $3
    WHERE id = $1 AND status = 'open'
"""
_FINISH_TASK = """
    UPDATE pick_tasks SET status = $2, picked = $3, short = $4, done_by = $5, done_at = $6 WHERE id = $1
"""
_LINE_PICKED = """
    UPDATE dispatch_order_lines SET allocated = allocated - $2, picked = picked + $3,
           short_picked = short_picked + $4, updated_at = $5
    WHERE id = $1
"""
_FINISH_LIST_IF_DONE = """
    UPDATE pick_lists SET status = CASE
        WHEN EXISTS (SELECT 1 FROM pick_tasks WHERE pick_list_id = $1 AND status = 'open') THEN status
        ELSE 'done' END,
      done_at = CASE
        WHEN EXISTS (SELECT 1 FROM pick_tasks WHERE pick_list_id = $1 AND status = 'open') THEN done_at
        ELSE $2 END,
      updated_at = $2
    WHERE id = $1
    RETURNING status
"""


_DOCK = """
    SELECT id, site_id, code, kind, is_active FROM locations
    WHERE site_id = $1 AND kind = 'dispatch' AND is_active
    ORDER BY pick_seq, code LIMIT 1
"""


async def dispatch_dock(session: AsyncSession, site_id: int) -> LocationRef:
    """The site's dispatch dock (the first on the pick path if it has several): picked stock waits there."""
    row = await (await driver(session)).fetchrow(_DOCK, site_id)
    if row is None:
        raise Refused("This site has no dispatch dock: add a location of kind “dispatch” first.")
    return LocationRef(*tuple(row))


# ---------------------------------------------------------------- who has the list


@dataclass(frozen=True)
class ListRow:
    id: int
    number: str
    site_id: int
    status: str
    taken_by: UUID | None
    taken_by_name: str | None


_LIST = """
    SELECT pl.id, pl.number, pl.site_id, pl.status, pl.taken_by, u.full_name
    FROM pick_lists pl LEFT JOIN users u ON u.id = pl.taken_by WHERE pl.id = $1
"""
_CLAIM_LIST = """
    UPDATE pick_lists SET status = 'taken', taken_by = $2, taken_at = $3, updated_at = $3
    WHERE id = $1 AND status = 'open'
    RETURNING id
"""
_GIVE_BACK = """
    UPDATE pick_lists SET status = 'open', taken_by = NULL, taken_at = NULL, updated_at = $3
    WHERE id = $1 AND status = 'taken' AND (taken_by = $2 OR $4)
    RETURNING id
"""
_HAND_OVER = """
    UPDATE pick_lists SET status = 'taken', taken_by = $2, taken_at = $3, updated_at = $3
    WHERE id = $1 AND status IN ('open', 'taken')
    RETURNING id
"""
_ORDERS_OF_LIST = """
    SELECT DISTINCT ol.order_id FROM pick_tasks t JOIN dispatch_order_lines ol ON ol.id = t.order_line_id
    WHERE t.pick_list_id = $1 AND t.status = 'open'
"""
_TARGET_USER = """
    SELECT u.id, u.username, u.full_name FROM users u
    WHERE u.username = $1 AND u.is_active
      AND (u.role = 'admin'
           OR EXISTS (SELECT 1 FROM user_sites us WHERE us.user_id = u.id AND us.site_id = $2))
"""


async def _list(session: AsyncSession, list_id: int, site_ids: Collection[int] | None) -> ListRow:
    row = await (await driver(session)).fetchrow(_LIST, list_id)
    if row is None or (site_ids is not None and row[2] not in site_ids):
        raise NotFound("Unknown pick list: {number}.", number=list_id)
    return ListRow(*tuple(row))


async def _orders_follow(session: AsyncSession, list_id: int, site_id: int, now: datetime) -> None:
    """A list changed hands: its orders' states follow, and the boards of its site are told."""
    live.changed(session, site_id, Topic.PICKING, Topic.ORDERS)
    pg = await driver(session)
    orders = [row[0] for row in await pg.fetch(_ORDERS_OF_LIST, list_id)]
    await refresh_order_states(session, orders, now)


def _answer(row: ListRow, status: str, user_id: UUID | None, name: str | None) -> dict[str, Any]:
    return {
        "pick_list": row.id,
        "number": row.number,
        "status": status,
        "taken_by": str(user_id) if user_id else None,
        "taken_by_name": name,
    }


async def take_pick_list(
    db: Database,
    list_id: int,
    *,
    site_ids: Collection[int] | None,
    actor: Actor,
    actor_name: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Take an open list: one conditional update, so of two operators at once exactly one gets it."""
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        row = await _list(session, list_id, site_ids)
        if await pg.fetchval(_CLAIM_LIST, list_id, actor.user_id, now) is None:
            row = await _list(session, list_id, site_ids)  # as the winner left it
            if refusal := closed_list(row.status, row.number):
                raise refusal
            if row.taken_by != actor.user_id:
                raise ListTaken(
                    "Pick list {number} is being picked by {name}.",
                    number=row.number,
                    name=row.taken_by_name or "?",
                )
        await _orders_follow(session, list_id, row.site_id, now)
        return _answer(row, "taken", actor.user_id, actor_name)

    return await idempotency.once(db, actor.scope, key, {"take": list_id}, now, operation)


async def release_pick_list(
    db: Database,
    list_id: int,
    *,
    site_ids: Collection[int] | None,
    actor: Actor,
    supervisor: bool,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Give a list back (its holder, or a supervisor): another operator may take what is left of it."""
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        row = await _list(session, list_id, site_ids)
        if await pg.fetchval(_GIVE_BACK, list_id, actor.user_id, now, supervisor) is None:
            row = await _list(session, list_id, site_ids)
            if refusal := closed_list(row.status, row.number):
                raise refusal
            if row.status == "taken":
                raise ListTaken(
                    "Pick list {number} is being picked by {name}.",
                    number=row.number,
                    name=row.taken_by_name or "?",
                )
        await _orders_follow(session, list_id, row.site_id, now)
        return _answer(row, "open", None, None)

    return await idempotency.once(db, actor.scope, key, {"release": list_id}, now, operation)


async def reassign_pick_list(
    db: Database,
    list_id: int,
    username: str,
    *,
    site_ids: Collection[int] | None,
    actor: Actor,
    actor_name: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """A supervisor hands a list (open or taken) to someone who works on its site."""
    key = idempotency.check_key(idempotency_key)
    username = username.strip().lower()

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        row = await _list(session, list_id, site_ids)
        person = await pg.fetchrow(_TARGET_USER, username, row.site_id)
        if person is None:
            raise Invalid(
                "{username} does not work at this site, or has no active account.",
                field="username",
                username=username,
            )
        if await pg.fetchval(_HAND_OVER, list_id, person["id"], now) is None:
            current = await _list(session, list_id, site_ids)  # neither open nor taken: finished or cancelled
            raise closed_list(current.status, current.number) or Refused(
                "Pick list {number} is finished.", number=current.number
            )
        await _orders_follow(session, list_id, row.site_id, now)
        await journal.record(
            session,
            "pick_list.reassigned",
            actor_id=actor.user_id,
            actor_name=actor_name,
            pick_list=row.number,
            previous=row.taken_by_name,
            to=person["username"],
        )
        return _answer(row, "taken", person["id"], person["full_name"])

    payload = {"reassign": list_id, "to": username}
    return await idempotency.once(db, actor.scope, key, payload, now, operation)
