"""Every change of stock: receipts, put-aways, transfers, adjustments, returns and counts.

Each use case runs in one transaction that locks the balance keys it touches (always in the same
global order, so two transactions cannot deadlock), checks with the pure ledger functions, appends
the movements, applies their deltas to the balances, and stores the idempotency key with its answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Location, Lot, Product, StockBalance
from app.db.session import Database, driver
from app.domain.ledger import (
    Balance,
    InsufficientStock,
    Movement,
    MovementKind,
    StockKey,
    apply_movements,
    count_difference,
    deltas,
    keys_in_lock_order,
)
from app.services import idempotency
from app.services.errors import Invalid, NotFound, Refused

SIMPLE_KINDS = (
    MovementKind.RECEIPT,
    MovementKind.PUTAWAY,
    MovementKind.TRANSFER,
    MovementKind.ADJUSTMENT,
    MovementKind.RETURN,
)


MAX_QUANTITY = 1_000_000  # per movement: far above any real one, far below the integer columns' limit


class OpenPickWork(Refused):
    """A count of a location with reserved stock: a supervisor may allow it."""


class NotEnoughStock(Refused):
    status = 409
    title = "Insufficient stock"


@dataclass(frozen=True)
class StockChange:
    """Move `quantity` of a product (SKU or barcode), in `lot`, out of `source` and/or into `target`."""

    kind: MovementKind
    site_id: int
    product: str
    quantity: int
    source: str | None = None  # location code
    target: str | None = None
    lot: str | None = None
    expiry: date | None = None
    reason: str | None = None
    document: str | None = None


@dataclass(frozen=True)
class CountLine:
    product: str
    lot: str | None
    counted: int


@dataclass(frozen=True)
class Actor:
    user_id: UUID | None
    scope: str  # whose idempotency keys: one namespace per user


def _shape(change: StockChange) -> None:
    """Refuse what is malformed before touching the database."""
    if change.kind not in SIMPLE_KINDS:
        raise Invalid("Unknown movement type: {kind}.", field="kind", kind=change.kind)
    if change.quantity <= 0:
        raise Invalid("The quantity must be a whole number above zero.", field="quantity")
    if change.quantity > MAX_QUANTITY:
        raise Invalid(
            "{quantity} is more than one movement may carry ({max}).",
            field="quantity",
            quantity=change.quantity,
            max=MAX_QUANTITY,
        )
    for name, value, limit in (
        ("lot", change.lot, 64),
        ("reason", change.reason, 200),
        ("document", change.document, 64),
    ):
        if value is not None and len(value) > limit:
            raise Invalid(
                "{name} is too long ({limit} characters at most).", field=name, name=name, limit=limit
            )
    sides = (change.source is not None, change.target is not None)
    needed = {
        MovementKind.RECEIPT: (False, True),
        MovementKind.RETURN: (False, True),
        MovementKind.PUTAWAY: (True, True),
        MovementKind.TRANSFER: (True, True),
    }.get(change.kind)
    if change.kind is MovementKind.ADJUSTMENT:
        if sides[0] == sides[1]:
            raise Invalid(
                "An adjustment takes stock out of a location or puts it in, not both.", field="source"
            )
        if not (change.reason or "").strip():
            raise Invalid("An adjustment needs a reason.", field="reason")
    elif sides != needed:
        missing = "source" if needed and needed[0] and not sides[0] else "target"
        raise Invalid("Scan the location first.", field=missing)
    if change.source is not None and change.source == change.target:
        raise Invalid("The source and the destination are the same location.", field="target")


async def record_stock_change(
    db: Database, change: StockChange, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Record one movement; returns (status, answer). A replay of the same key returns the first answer."""
    _shape(change)
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        product = await find_product(session, change.product)
        # A lot comes into existence only with stock from outside (receipt, return, adjustment in).
        lot_id = await _lot(session, product, change.lot, change.expiry, creating=change.source is None)
        source = await find_location(session, change.site_id, change.source) if change.source else None
        target = await find_location(session, change.site_id, change.target) if change.target else None
        movement = Movement(
            change.kind,
            product.id,
            lot_id,
            source.id if source else None,
            target.id if target else None,
            change.quantity,
        )
        codes = {loc.id: loc.code for loc in (source, target) if loc is not None}
        return await _apply(
            session, [movement], codes, actor, now, reason=change.reason, document=change.document
        )

    return await idempotency.once(db, actor.scope, key, asdict(change), now, operation)


async def count_location(
    db: Database,
    site_id: int,
    location_code: str,
    lines: Sequence[CountLine],
    *,
    override: bool,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """A blind count of a whole location: what is not counted is counted zero; differences are corrected."""
    if any(line.counted < 0 for line in lines):
        raise Invalid("A count cannot be negative.", field="counted")
    key = idempotency.check_key(idempotency_key)
    payload = {
        "site": site_id,
        "location": location_code,
        "override": override,
        "lines": [asdict(line) for line in lines],
    }

    async def operation(session: AsyncSession) -> dict[str, Any]:
        location = await find_location(session, site_id, location_code)
        counted: dict[StockKey, int] = {}
        for line in lines:
            product = await find_product(session, line.product)
            lot_id = await _lot(session, product, line.lot, None, creating=True)
            stock_key = StockKey(product.id, location.id, lot_id)
            counted[stock_key] = counted.get(stock_key, 0) + line.counted
        # Lock what is recorded here as well as what was counted, then read it under the locks.
        recorded = await _keys_at(session, location.id)
        await _lock(session, set(recorded) | set(counted))
        balances = await _balances(session, set(recorded) | set(counted))
        if any(b.reserved for b in balances.values()) and not override:
            raise OpenPickWork(
                "Location {location} has open pick work: a supervisor must allow this count.",
                location=location.code,
            )
        corrections = []
        for stock_key in sorted(set(balances) | set(counted), key=StockKey.sort_key):
            balance = balances.get(stock_key, Balance())
            if counted.get(stock_key, 0) < balance.reserved:
                raise Refused(
                    "Location {location}: {reserved} are reserved for picking, {counted} counted. "
                    "Reallocate before correcting.",
                    location=location.code,
                    reserved=balance.reserved,
                    counted=counted.get(stock_key, 0),
                )
            correction = count_difference(stock_key, balance.on_hand, counted.get(stock_key, 0))
            if correction is not None:
                corrections.append(correction)
        answer = await _apply(
            session,
            corrections,
            {location.id: location.code},
            actor,
            now,
            reason="count",
            document=None,
            locked=balances,
        )
        answer["counted_lines"] = len(lines)
        return answer

    return await idempotency.once(db, actor.scope, key, payload, now, operation)


async def _apply(
    session: AsyncSession,
    movements: list[Movement],
    codes: dict[int, str],
    actor: Actor,
    now: datetime,
    *,
    reason: str | None,
    document: str | None,
    locked: dict[StockKey, Balance] | None = None,
) -> dict[str, Any]:
    """Lock, check, append and apply: the one path every stock change takes."""
    keys = keys_in_lock_order(movements)
    if locked is None:
        await _lock(session, keys)
        locked = await _balances(session, keys)
    try:
        after = apply_movements(locked, movements)
    except InsufficientStock as short:
        raise NotEnoughStock(
            "Location {location}: only {available} in stock, {requested} requested.",
            location=codes.get(short.key.location_id, "?"),
            available=short.available,
            requested=short.requested,
        ) from short
    if movements:
        pg = await driver(session)
        n = len(movements)
        ids = [
            row[0]
            for row in await pg.fetch(
                _INSERT_MOVEMENTS,
                [m.kind.value for m in movements],
                [m.product_id for m in movements],
                [m.lot_id for m in movements],
                [m.from_location_id for m in movements],
                [m.to_location_id for m in movements],
                [m.quantity for m in movements],
                [reason] * n,
                [document] * n,
                [actor.user_id] * n,
                [now] * n,
            )
        ]
        changes = sorted(deltas(movements).items(), key=lambda kv: kv[0].sort_key())
        # A pick consumes the reservation at its source: reserved falls with on-hand, in one statement,
        # so the CHECK (reserved <= on hand) sees both changes at once.
        consumed = {k: locked[k].reserved - b.reserved for k, b in after.items() if k in locked}
        outflows = [
            (k.product_id, k.location_id, k.lot_id, d, consumed.get(k, 0), now) for k, d in changes if d < 0
        ]
        inflows = [(k.product_id, k.location_id, k.lot_id, d, now) for k, d in changes if d > 0]
        # Outflows update rows known to exist; inflows may create them. (An upsert cannot carry a negative
        # delta: PostgreSQL checks the proposed new row against the CHECK constraints before the conflict.)
        if outflows:
            await pg.executemany(_TAKE, outflows)
        if inflows:
            await pg.executemany(_ADD, inflows)
    else:
        ids = []
    return {
        "movements": list(ids),
        "balances": [
            {
                "product_id": k.product_id,
                "location_id": k.location_id,
                "location": codes.get(k.location_id),
                "lot_id": k.lot_id,
                "on_hand": b.on_hand,
                "reserved": b.reserved,
                "available": b.available,
            }
            for k, b in sorted(after.items(), key=lambda kv: kv[0].sort_key())
        ],
    }


async def apply_movements_locked(
    session: AsyncSession,
    movements: list[Movement],
    codes: dict[int, str],
    actor: Actor,
    now: datetime,
    *,
    reason: str | None,
    document: str | None,
    locked: dict[StockKey, Balance],
) -> dict[str, Any]:
    """Check, append and apply movements whose keys the caller locked and read (`lock_balances`).

    For use cases that change more than stock in one transaction (a pick, a shipment): the same path
    as every other stock change, on the balances the caller read under the locks.
    """
    return await _apply(
        session, movements, codes, actor, now, reason=reason, document=document, locked=locked
    )


_INSERT_MOVEMENTS = """
    INSERT INTO stock_movements (kind, product_id, lot_id, from_location_id, to_location_id, quantity,
                                 reason, document, actor_id, occurred_at)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::int[],
                         $7::text[], $8::text[], $9::uuid[], $10::timestamptz[])
    RETURNING id
"""
_TAKE = """
    UPDATE stock_balances SET on_hand = on_hand + $4, reserved = reserved - $5, updated_at = $6
    WHERE product_id = $1 AND location_id = $2 AND coalesce(lot_id, 0) = coalesce($3::bigint, 0)
"""
_ADD = """
    INSERT INTO stock_balances (product_id, location_id, lot_id, on_hand, reserved, updated_at)
    VALUES ($1, $2, $3, $4, 0, $5)
    ON CONFLICT (product_id, location_id, (coalesce(lot_id, 0)))
    DO UPDATE SET on_hand = stock_balances.on_hand + EXCLUDED.on_hand, updated_at = EXCLUDED.updated_at
"""


def lock_id(key: StockKey) -> int:
    """A signed 64-bit advisory-lock id for a balance key (collisions only over-serialize)."""
    digest = hashlib.blake2b(
        f"stock:{key.product_id}:{key.location_id}:{key.lot_id or 0}".encode(), digest_size=8
    )
    return int.from_bytes(digest.digest(), "big", signed=True)


async def _lock(session: AsyncSession, keys: Sequence[StockKey] | set[StockKey]) -> None:
    """Lock balance keys, existing or not, in ascending lock-id order: the same order in every transaction.

    Advisory locks cover rows that do not exist yet (a first receipt), which row locks cannot. One
    statement takes them all: PostgreSQL evaluates a volatile function of the select list after the
    ORDER BY, so the locks are taken in ascending order.
    """
    if keys:
        await (await driver(session)).execute(_LOCK, sorted({lock_id(k) for k in keys}))


_LOCK = "SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id ORDER BY id"
# FOR UPDATE, in key order: a dispatch run reserves on these rows under row locks only (it may touch
# tens of thousands of keys, too many for advisory locks), so a change reads them locked, after any
# run in flight has committed, and checks availability against what that run reserved.
_BALANCES = """
    SELECT b.product_id, b.location_id, b.lot_id, b.on_hand, b.reserved
    FROM stock_balances b
    JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(product_id, location_id, lot)
      ON b.product_id = k.product_id AND b.location_id = k.location_id AND coalesce(b.lot_id, 0) = k.lot
    ORDER BY b.product_id, b.location_id, coalesce(b.lot_id, 0)
    FOR UPDATE OF b
"""


async def _balances(
    session: AsyncSession, keys: Sequence[StockKey] | set[StockKey]
) -> dict[StockKey, Balance]:
    """Current balances of `keys` (absent keys have none yet). Arrays, not an IN list: any number of keys."""
    if not keys:
        return {}
    ordered = list(keys)
    rows = await (await driver(session)).fetch(
        _BALANCES,
        [k.product_id for k in ordered],
        [k.location_id for k in ordered],
        [k.lot_id or 0 for k in ordered],
    )
    return {StockKey(p, loc, lot): Balance(on_hand, reserved) for p, loc, lot, on_hand, reserved in rows}


async def lock_balances(
    session: AsyncSession, keys: Sequence[StockKey] | set[StockKey]
) -> dict[StockKey, Balance]:
    """Lock balance keys the way every stock change does, and read them under the locks."""
    await _lock(session, keys)
    return await _balances(session, keys)


async def _keys_at(session: AsyncSession, location_id: int) -> list[StockKey]:
    rows = await session.execute(
        select(StockBalance.product_id, StockBalance.lot_id).where(
            StockBalance.location_id == location_id, StockBalance.on_hand > 0
        )
    )
    return [StockKey(p, location_id, lot) for p, lot in rows]


@dataclass(frozen=True)
class ProductRef:
    """What a stock change needs to know of a product."""

    id: int
    sku: str
    name: str
    pack_size: int
    lot_tracked: bool
    expiry_tracked: bool
    is_active: bool
    scanned_units: int = 1  # units the code it was found by stands for (a case GTIN: the pack)


@dataclass(frozen=True)
class LocationRef:
    id: int
    site_id: int
    code: str
    kind: str
    is_active: bool


# Core statements, built once: this is the hot path of every stock change (an ORM load costs far more).
_PRODUCT_COLUMNS = (
    Product.id,
    Product.sku,
    Product.name,
    Product.pack_size,
    Product.lot_tracked,
    Product.expiry_tracked,
    Product.is_active,
)
_LOCATION_COLUMNS = (Location.id, Location.site_id, Location.code, Location.kind, Location.is_active)
# The same three lookups as asyncpg statements: they run on every scan and every stock change.
_FIND_PRODUCT_SQL = """
    SELECT * FROM (
        SELECT id, sku, name, pack_size, lot_tracked, expiry_tracked, is_active, 1 AS units, 0 AS rank
        FROM products WHERE sku = $1
        UNION ALL
        SELECT p.id, p.sku, p.name, p.pack_size, p.lot_tracked, p.expiry_tracked, p.is_active, b.units, 1
        FROM products p JOIN product_barcodes b ON b.product_id = p.id WHERE b.code = $1
    ) found ORDER BY rank LIMIT 1
"""
_FIND_LOCATION_SQL = """
    SELECT id, site_id, code, kind, is_active FROM locations
    WHERE site_id = $1 AND (code = $2 OR barcode = $2)
"""
_FIND_LOT_SQL = "SELECT id, expiry FROM lots WHERE product_id = $1 AND code = $2"


async def find_product(session: AsyncSession, reference: str) -> ProductRef:
    """A product by SKU, or by one of its barcodes (NotFound otherwise); screens validate scans with it."""
    reference = reference.strip()
    row = await (await driver(session)).fetchrow(_FIND_PRODUCT_SQL, reference)
    if row is None or not row["is_active"]:
        raise NotFound("Unknown product: {product}.", product=reference)
    return ProductRef(*tuple(row)[:8])


async def find_location(session: AsyncSession, site_id: int, code: str) -> LocationRef:
    """A location of the site, by its code or its barcode."""
    code = code.strip()
    row = await (await driver(session)).fetchrow(_FIND_LOCATION_SQL, site_id, code)
    if row is None:
        raise NotFound("Unknown location at this site: {code}.", code=code)
    location = LocationRef(*tuple(row))
    if not location.is_active:
        raise Refused("Location {code} is not in use.", code=location.code)
    return location


async def _lot(
    session: AsyncSession, product: ProductRef, code: str | None, expiry: date | None, *, creating: bool
) -> int | None:
    """The lot id for a lot-tracked product (created on receipt), None for the others."""
    code = (code or "").strip() or None
    if not product.lot_tracked:
        if code:
            raise Invalid("Product {sku} is not tracked by lot.", field="lot", sku=product.sku)
        return None
    if code is None:
        raise Invalid("Product {sku} is tracked by lot: scan or enter the lot.", field="lot", sku=product.sku)
    lot = await (await driver(session)).fetchrow(_FIND_LOT_SQL, product.id, code)
    if lot is None:
        if not creating:
            raise NotFound("Unknown lot {lot} of {sku}.", lot=code, sku=product.sku)
        if product.expiry_tracked and expiry is None:
            raise Invalid("Lot {lot} needs its expiry date.", field="expiry", lot=code)
        lot_id = await session.scalar(
            insert(Lot)
            .values(product_id=product.id, code=code, expiry=expiry)
            .on_conflict_do_nothing(index_elements=["product_id", "code"])
            .returning(Lot.id)
        )  # rare (a new lot): the ORM insert fills the audit columns
        if lot_id is None:  # created by a concurrent transaction an instant ago
            lot_id = await session.scalar(
                select(Lot.id).where(Lot.product_id == product.id, Lot.code == code)
            )
        return lot_id
    lot_id, lot_expiry = lot
    if expiry is not None and lot_expiry is not None and expiry != lot_expiry:
        raise Invalid(
            "Lot {lot} of {sku} expires on {expected}, not {given}.",
            field="expiry",
            lot=code,
            sku=product.sku,
            expected=lot_expiry,
            given=expiry,
        )
    return int(lot_id)


@dataclass(frozen=True)
class OpeningLine:
    """What a site holds of a product (in a lot) at a location when the tool goes live."""

    site: str  # site code
    location: str  # location code or barcode
    product: str  # SKU or barcode
    lot: str | None
    expiry: date | None
    quantity: int


async def set_opening_stock(
    session: AsyncSession,
    site_id_by_code: dict[str, int],
    lines: Sequence[OpeningLine],
    *,
    actor: Actor,
    now: datetime,
    document: str | None = None,
) -> int:
    """Bring each line's on-hand to its quantity with "opening stock" adjustments; returns the movements.

    In the caller's transaction. A line that already holds its quantity moves nothing, so importing the
    same file twice changes nothing. The keys are locked and the changes applied like every other change.
    """
    targets, codes = await _opening_targets(session, site_id_by_code, lines)
    await _lock(session, list(targets))
    balances = await _balances(session, list(targets))
    movements = []
    for key in sorted(targets, key=StockKey.sort_key):
        difference = count_difference(key, balances.get(key, Balance()).on_hand, targets[key])
        if difference is not None:  # what a count would find, booked as an adjustment
            movements.append(
                Movement(
                    MovementKind.ADJUSTMENT,
                    difference.product_id,
                    difference.lot_id,
                    difference.from_location_id,
                    difference.to_location_id,
                    difference.quantity,
                )
            )
    answer = await _apply(
        session, movements, codes, actor, now, reason="opening stock", document=document, locked=balances
    )
    return len(answer["movements"])


async def _opening_targets(
    session: AsyncSession, site_id_by_code: dict[str, int], lines: Sequence[OpeningLine]
) -> tuple[dict[StockKey, int], dict[int, str]]:
    """The balance key and wanted quantity of each line, and the codes of their locations."""
    # Products and locations come in two queries rather than two per line; what is missed here (a
    # barcode, an inactive product or location) goes through find_product/find_location, which refuse it.
    found = await session.execute(
        select(*_PRODUCT_COLUMNS).where(Product.sku.in_({line.product for line in lines}), Product.is_active)
    )
    products: dict[str, ProductRef] = {row.sku: ProductRef(*row) for row in found}
    places = await session.execute(
        select(*_LOCATION_COLUMNS).where(
            Location.site_id.in_({site_id_by_code[line.site] for line in lines}),
            Location.code.in_({line.location for line in lines}),
            Location.is_active,
        )
    )
    locations = {(row.site_id, row.code): LocationRef(*row) for row in places}
    targets: dict[StockKey, int] = {}
    for line in lines:
        if line.quantity < 0:
            raise Invalid("A count cannot be negative.", field="quantity")
        product = products.get(line.product) or await find_product(session, line.product)
        products[line.product] = product
        site_id = site_id_by_code[line.site]
        location = locations.get((site_id, line.location)) or await find_location(
            session, site_id, line.location
        )
        locations[(site_id, line.location)] = location
        lot_id = await _lot(session, product, line.lot, line.expiry, creating=True)
        targets[StockKey(product.id, location.id, lot_id)] = line.quantity
    return targets, {location.id: location.code for location in locations.values()}
