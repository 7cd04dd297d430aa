"""Every change of stock: receipts, put-aways, transfers, adjustments, returns and counts.

Each use case runs in one transaction that locks the balance keys it touches (always in the same
global order, so two transactions cannot deadlock), checks with the pure ledger functions, appends
the movements, applies their deltas to the balances, and stores the idempotency key with its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import live
from app.db.live import Topic
from app.db.models import Location, Lot, Product, StockBalance
from app.db.queries.stock import SiteRef
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
    db: Database,
    change: StockChange,
    *,
    actor: Actor,
    idempotency_key: str,
    now: datetime,
    site_code: str | None = None,
    check_site: Callable[[SiteRef | None], object] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Record one movement; returns (status, answer). A replay of the same key returns the first answer.

    With `site_code` (the API names sites by code), the site is looked up in the use case's first
    statement instead of `change.site_id`, and `check_site` sees it first (None: no such site): what it
    raises is raised as is, and not stored as the key's answer (the request was not for one of your sites).

    Statements, for a movement between known product, lot and locations: the key's lock with every lookup
    (`_RESOLVE`); the key's stored answer with the balance keys' advisory locks; the balances FOR UPDATE;
    the movement, the balance changes and the key's answer in one statement (`_WRITE`). Then COMMIT.
    """
    _shape(change)
    claimed = idempotency.Claim(actor.scope, idempotency.check_key(idempotency_key))
    site_code = site_code.strip().upper() if site_code is not None else None

    async def work(session: AsyncSession) -> idempotency.Answer:
        pg = await driver(session)
        row = await pg.fetchrow(
            _RESOLVE,
            claimed.lock,
            site_code,
            None if site_code is not None else change.site_id,
            change.product.strip(),
            (change.lot or "").strip() or None,
            change.source.strip() if change.source is not None else None,
            change.target.strip() if change.target is not None else None,
        )
        resolved = change
        if site_code is not None:
            site = SiteRef(row["site_id"], row["site_code"]) if row["site_id"] is not None else None
            if check_site is not None:
                try:
                    check_site(site)
                except Refused as outside:
                    raise _NotStored(outside) from outside
            if site is None:
                raise _NotStored(Invalid("Unknown site: {code}.", field="site", code=site_code))
            resolved = replace(change, site_id=site.id)
        # asdict's deep copy is not needed for these flat fields: the same dict, the same hash
        claimed.fingerprint = idempotency.request_hash({f: getattr(resolved, f) for f in _CHANGE_FIELDS})
        refusal: Refused | None = None
        movement: Movement | None = None
        try:
            product, lot, source, target = _references(resolved, row)
            if lot != _NEW_LOT:
                movement = _movement(resolved, product, lot, source, target)
        except Refused as error:
            refusal = error
        # Read the key's answer only now (this statement's snapshot follows the key's lock), with the
        # balance keys' locks when they are known; a replay wastes those locks, and changes nothing.
        keys = keys_in_lock_order([movement]) if movement else []
        locks = sorted({lock_id(k) for k in keys})
        replay = idempotency.replay_of(
            await pg.fetchrow(_STORED_AND_LOCK, claimed.scope, claimed.key, locks), claimed.fingerprint
        )
        if replay is not None:
            return replay
        if refusal is not None:
            raise refusal
        if movement is None:  # a lot this receipt brings into existence
            lot_id = await _create_lot(session, product, resolved.lot or "", resolved.expiry)
            movement = _movement(resolved, product, lot_id, source, target)
            keys = keys_in_lock_order([movement])
            await _lock(session, keys)
        codes = {loc.id: loc.code for loc in (source, target) if loc is not None}
        answer = await _apply(
            session,
            [movement],
            codes,
            actor,
            now,
            reason=resolved.reason,
            document=resolved.document,
            locked=await _read_balances(pg, keys),
            store=claimed,
            pg=pg,
        )
        live.changed(session, resolved.site_id, Topic.STOCK)
        return idempotency.Answer(201, answer)

    try:
        return await idempotency.settle(db, claimed, now, work)
    except _NotStored as not_stored:
        raise not_stored.refusal from None


_CHANGE_FIELDS = tuple(f.name for f in fields(StockChange))


class _NotStored(Exception):
    """A refusal that is not the key's answer (raised before the key is read)."""

    def __init__(self, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


# The key's lock and every lookup of a stock change, in one round trip. Products, lots and locations are
# read in the snapshot taken before the lock's wait, as they would be just before it. The key's answer is
# read by the next statement (see idempotency.CLAIM_LOCK).
# It also switches the rest of the transaction to generic plans: its statements take arrays of one or two
# keys, which PostgreSQL's default plan choice keeps planning afresh on every execution (it estimates 100
# rows per `unnest` in a generic plan, so it never trusts one): that planning was about half of their time
# in PostgreSQL. The plans it then reuses are the ones it chooses for a single key (index look-ups).
_RESOLVE = f"""
    SELECT s.id AS site_id, s.code AS site_code,
           p.id, p.sku, p.name, p.pack_size, p.lot_tracked, p.expiry_tracked, p.is_active, p.units,
           lot.id AS lot_id, lot.expiry AS lot_expiry,
           src.id, src.site_id, src.code, src.kind, src.is_active,
           dst.id, dst.site_id, dst.code, dst.kind, dst.is_active
    FROM (
        SELECT {idempotency.CLAIM_LOCK}, set_config('plan_cache_mode', 'force_generic_plan', true)
    ) AS claimed
    LEFT JOIN sites s ON s.id = coalesce($3::bigint, (SELECT id FROM sites WHERE code = $2::text))
    LEFT JOIN LATERAL (
        SELECT id, sku, name, pack_size, lot_tracked, expiry_tracked, is_active, 1 AS units, 0 AS rank
        FROM products WHERE sku = $4::text
        UNION ALL
        SELECT p.id, p.sku, p.name, p.pack_size, p.lot_tracked, p.expiry_tracked, p.is_active, b.units, 1
        FROM products p JOIN product_barcodes b ON b.product_id = p.id WHERE b.code = $4::text
        ORDER BY rank LIMIT 1
    ) p ON true
    LEFT JOIN lots lot ON lot.product_id = p.id AND lot.code = $5::text
    LEFT JOIN LATERAL (
        SELECT id, site_id, code, kind, is_active FROM locations
        WHERE site_id = s.id AND (code = $6::text OR barcode = $6::text) LIMIT 1
    ) src ON true
    LEFT JOIN LATERAL (
        SELECT id, site_id, code, kind, is_active FROM locations
        WHERE site_id = s.id AND (code = $7::text OR barcode = $7::text) LIMIT 1
    ) dst ON true
"""
# The key's stored answer (no row: none yet), and the balance keys' advisory locks in ascending order.
_STORED_AND_LOCK = """
    WITH locked AS MATERIALIZED (
        SELECT pg_advisory_xact_lock(id) FROM unnest($3::bigint[]) AS id ORDER BY id
    )
    SELECT k.request_hash, k.status, k.response, (SELECT count(*) FROM locked) AS locks
    FROM (SELECT 1) AS one LEFT JOIN idempotency_keys k ON k.scope = $1 AND k.key = $2
"""
_NEW_LOT = -1  # `_checked_lot`: the lot does not exist yet, and this change may create it


def _references(
    change: StockChange, row: Any
) -> tuple[ProductRef, int | None, LocationRef | None, LocationRef | None]:
    """The product, lot id and locations `_RESOLVE` found; refused as find_product, _lot, find_location do."""
    values = tuple(row)
    if values[2] is None or not values[8]:
        raise NotFound("Unknown product: {product}.", product=change.product.strip())
    product = ProductRef(*values[2:10])
    found_lot = None if values[10] is None else (values[10], values[11])
    # A lot comes into existence only with stock from outside (receipt, return, adjustment in).
    lot = _checked_lot(product, change.lot, change.expiry, found_lot, creating=change.source is None)
    source = _checked_location(values[12:17], change.source) if change.source is not None else None
    target = _checked_location(values[17:22], change.target) if change.target is not None else None
    return product, lot, source, target


def _checked_location(values: tuple[Any, ...], code: str) -> LocationRef:
    if values[0] is None:
        raise NotFound("Unknown location at this site: {code}.", code=code.strip())
    location = LocationRef(*values)
    if not location.is_active:
        raise Refused("Location {code} is not in use.", code=location.code)
    return location


def _movement(
    change: StockChange,
    product: ProductRef,
    lot_id: int | None,
    source: LocationRef | None,
    target: LocationRef | None,
) -> Movement:
    return Movement(
        change.kind,
        product.id,
        lot_id,
        source.id if source else None,
        target.id if target else None,
        change.quantity,
    )


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
        live.changed(session, site_id, Topic.STOCK)
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
    store: idempotency.Claim | None = None,
    pg: Any = None,
) -> dict[str, Any]:
    """Lock, check, append and apply: the one path every stock change takes.

    With `store`, the answer is also stored as that key's (status 201), in the same statement as the
    movements and the balance changes (the caller then adds nothing to the answer). `pg`: the session's
    asyncpg connection, when the caller has it already.
    """
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
    balances = [
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
    ]
    if not movements and store is None:
        return {"movements": [], "balances": balances}
    changes = sorted(deltas(movements).items(), key=lambda kv: kv[0].sort_key())
    # A pick consumes the reservation at its source: reserved falls with on-hand, in one statement,
    # so the CHECK (reserved <= on hand) sees both changes at once.
    consumed = {k: locked[k].reserved - b.reserved for k, b in after.items() if k in locked}
    outflows = [(k, d) for k, d in changes if d < 0]
    inflows = [(k, d) for k, d in changes if d > 0]
    n = len(movements)
    rows = await (pg or await driver(session)).fetch(
        _WRITE,
        [m.kind.value for m in movements],
        [m.product_id for m in movements],
        [m.lot_id for m in movements],
        [m.from_location_id for m in movements],
        [m.to_location_id for m in movements],
        [m.quantity for m in movements],
        [reason] * n,
        [document] * n,
        [actor.user_id] * n,
        now,
        [k.product_id for k, _ in outflows],
        [k.location_id for k, _ in outflows],
        [k.lot_id or 0 for k, _ in outflows],
        [d for _, d in outflows],
        [consumed.get(k, 0) for k, _ in outflows],
        [k.product_id for k, _ in inflows],
        [k.location_id for k, _ in inflows],
        [k.lot_id for k, _ in inflows],
        [d for _, d in inflows],
        None if store is None else store.scope,
        None if store is None else store.key,
        None if store is None else store.fingerprint,
        json.dumps(balances),
    )
    counts = next(row for row in rows if row["id"] is None)
    if counts["taken"] != len(outflows):  # a row locked and checked a moment ago cannot be missing
        raise AssertionError(f"{len(outflows) - counts['taken']} balance rows to take from were missing")
    return {"movements": sorted(row["id"] for row in rows if row["id"] is not None), "balances": balances}


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


# One statement appends the movements, applies their deltas and, for a use case that asks, stores the
# idempotency key with its answer (the movements' ids and the balances after). Outflows update rows known
# to exist (locked and checked); inflows may create them. (An upsert cannot carry a negative delta:
# PostgreSQL checks the proposed new row against the CHECK constraints before the conflict.) The two never
# touch the same row: one net delta per key. Always one row: the counts, then each movement's id.
_WRITE = """
    WITH moved AS (
        INSERT INTO stock_movements (kind, product_id, lot_id, from_location_id, to_location_id, quantity,
                                     reason, document, actor_id, occurred_at)
        SELECT kind, product_id, lot_id, from_id, to_id, quantity, reason, document, actor_id,
               $10::timestamptz
        FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::int[],
                    $7::text[], $8::text[], $9::uuid[])
             AS m(kind, product_id, lot_id, from_id, to_id, quantity, reason, document, actor_id)
        RETURNING id
    ), taken AS (
        UPDATE stock_balances b
        SET on_hand = b.on_hand + t.delta, reserved = b.reserved - t.consumed, updated_at = $10::timestamptz
        FROM unnest($11::bigint[], $12::bigint[], $13::bigint[], $14::int[], $15::int[])
             AS t(product_id, location_id, lot, delta, consumed)
        WHERE b.product_id = t.product_id AND b.location_id = t.location_id AND coalesce(b.lot_id, 0) = t.lot
        RETURNING 1
    ), added AS (
        INSERT INTO stock_balances (product_id, location_id, lot_id, on_hand, reserved, updated_at)
        SELECT product_id, location_id, lot_id, delta, 0, $10::timestamptz
        FROM unnest($16::bigint[], $17::bigint[], $18::bigint[], $19::int[])
             AS a(product_id, location_id, lot_id, delta)
        ON CONFLICT (product_id, location_id, (coalesce(lot_id, 0)))
        DO UPDATE SET on_hand = stock_balances.on_hand + EXCLUDED.on_hand, updated_at = EXCLUDED.updated_at
        RETURNING 1
    ), stored AS (
        INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)
        SELECT $20::text, $21::text, $22::text, 201,
               jsonb_build_object(
                   'movements', coalesce((SELECT jsonb_agg(id ORDER BY id) FROM moved), '[]'::jsonb),
                   'balances', $23::jsonb
               ),
               $10::timestamptz
        WHERE $20::text IS NOT NULL
        RETURNING 1
    )
    SELECT NULL::bigint AS id, (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM added) AS added,
           (SELECT count(*) FROM stored) AS stored
    UNION ALL
    (SELECT id, NULL, NULL, NULL FROM moved ORDER BY id)
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
    return await _read_balances(await driver(session), keys) if keys else {}


async def _read_balances(pg: Any, keys: Sequence[StockKey] | set[StockKey]) -> dict[StockKey, Balance]:
    if not keys:
        return {}
    ordered = list(keys)
    rows = await pg.fetch(
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
    found = None
    if product.lot_tracked and code is not None:
        found = await (await driver(session)).fetchrow(_FIND_LOT_SQL, product.id, code)
    lot_id = _checked_lot(product, code, expiry, found, creating=creating)
    if lot_id == _NEW_LOT:
        return await _create_lot(session, product, code or "", expiry)
    return lot_id


def _checked_lot(
    product: ProductRef,
    code: str | None,
    expiry: date | None,
    found: Any,
    *,
    creating: bool,
) -> int | None:
    """The lot id of `code` given the lot row found (id, expiry; None: no such lot), `_NEW_LOT` for a lot
    to create, None for a product without lots; refuses a lot the product cannot have."""
    code = (code or "").strip() or None
    if not product.lot_tracked:
        if code:
            raise Invalid("Product {sku} is not tracked by lot.", field="lot", sku=product.sku)
        return None
    if code is None:
        raise Invalid("Product {sku} is tracked by lot: scan or enter the lot.", field="lot", sku=product.sku)
    if found is None:
        if not creating:
            raise NotFound("Unknown lot {lot} of {sku}.", lot=code, sku=product.sku)
        if product.expiry_tracked and expiry is None:
            raise Invalid("Lot {lot} needs its expiry date.", field="expiry", lot=code)
        return _NEW_LOT
    lot_id, lot_expiry = found
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


async def _create_lot(session: AsyncSession, product: ProductRef, code: str, expiry: date | None) -> int:
    code = code.strip()
    lot_id = await session.scalar(
        insert(Lot)
        .values(product_id=product.id, code=code, expiry=expiry)
        .on_conflict_do_nothing(index_elements=["product_id", "code"])
        .returning(Lot.id)
    )  # rare (a new lot): the ORM insert fills the audit columns
    if lot_id is None:  # created by a concurrent transaction an instant ago
        lot_id = await session.scalar(select(Lot.id).where(Lot.product_id == product.id, Lot.code == code))
    if lot_id is None:
        raise AssertionError(f"lot {code} of product {product.id}: neither created nor found")
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
    for site in {line.site for line in lines}:
        live.changed(session, site_id_by_code[site], Topic.STOCK)
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
