"""Destinations: the stores, branches and customers that receive stock, created or updated by code.

A destination's address and contact are personal or commercial data: they are stored encrypted, the
journal records who changed them or looked at them, and never what they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Destination
from app.db.models.catalog import DESTINATION_KINDS
from app.db.session import Database, driver
from app.services import idempotency, journal
from app.services.errors import Invalid, NotFound
from app.services.users import Actor

CODE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}$")
MAX_TIER = 99
MAX_UNITS = 1_000_000_000
MAX_ADDRESS, MAX_CONTACT = 500, 200
SENSITIVE = ("address", "contact")
_FIELDS = (
    "name",
    "kind",
    "tier",
    "min_units",
    "max_units",
    "quota_percent",
    "address",
    "contact",
    "is_active",
)


@dataclass(frozen=True)
class DestinationData:
    """A destination as a form or a request gives it.

    `address` and `contact`: None keeps what is stored (an API client that omits them), "" clears it.
    """

    code: str
    name: str
    kind: str = "store"
    tier: int = 2
    min_units: int | None = None
    max_units: int | None = None
    quota_percent: Decimal | None = None
    address: str | None = None
    contact: str | None = None
    is_active: bool = True


def quota(value: Any) -> Decimal | None:
    """A quota percentage from a form or a file ("12,5" or "12.5"); blank is none."""
    text = str(value if value is not None else "").strip().replace(",", ".").rstrip("%").strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise Invalid("The quota is a percentage from 0 to 100.", field="quota_percent") from None
    return number


def check_destination(data: DestinationData) -> DestinationData:
    """Normalise and validate one destination; raise Invalid naming the field."""
    code, name = data.code.strip().upper(), " ".join(data.name.split())
    if not CODE.match(code):
        raise Invalid(
            "A destination code has 1 to 32 letters, digits or . _ - characters.", field="code", code=code
        )
    if not name or len(name) > 200:
        raise Invalid("Enter the destination's name (200 characters at most).", field="name")
    if data.kind not in DESTINATION_KINDS:
        raise Invalid("Unknown destination kind: {kind}.", field="kind", kind=data.kind)
    if not 1 <= data.tier <= MAX_TIER:
        raise Invalid(
            "The tier is a whole number from 1 (served first) to {max}.", field="tier", max=MAX_TIER
        )
    for field, value in (("min_units", data.min_units), ("max_units", data.max_units)):
        if value is not None and not 0 <= value <= MAX_UNITS:
            raise Invalid(
                "{value} is out of range: from 0 to {max}.", field=field, value=value, max=MAX_UNITS
            )
    if data.min_units is not None and data.max_units is not None and data.max_units < data.min_units:
        raise Invalid(
            "The maximum ({max}) is below the minimum ({min}).",
            field="max_units",
            max=data.max_units,
            min=data.min_units,
        )
    percent = data.quota_percent
    if percent is not None and (
        not percent.is_finite() or not 0 <= percent <= 100 or percent != percent.quantize(Decimal("0.01"))
    ):
        raise Invalid("The quota is a percentage from 0 to 100.", field="quota_percent")
    address, contact = (
        _secret(data.address, MAX_ADDRESS, "address"),
        _secret(data.contact, MAX_CONTACT, "contact"),
    )
    return DestinationData(
        code,
        name,
        data.kind,
        data.tier,
        data.min_units,
        data.max_units,
        percent,
        address,
        contact,
        data.is_active,
    )


def _secret(value: str | None, limit: int, field: str) -> str | None:
    if value is None:
        return None
    text = "\n".join(line.strip() for line in value.strip().splitlines())
    if len(text) > limit:
        raise Invalid(
            "{name} is too long ({limit} characters at most).", field=field, name=field, limit=limit
        )
    return text


def _scope(actor: Actor) -> str:
    return str(actor.user_id) if actor.user_id else actor.username


async def save_destination(
    db: Database, data: DestinationData, *, actor: Actor, idempotency_key: str, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Create or update a destination by code, journaled; returns (status, answer), replayable by key."""
    wanted = check_destination(data)
    key = idempotency.check_key(idempotency_key)
    payload = {"op": "save_destination", **{k: str(v) for k, v in vars(wanted).items()}}

    async def operation(session: AsyncSession) -> dict[str, Any]:
        # Two first saves of one code at once: the second waits here, then updates what the first made.
        await (await driver(session)).execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"destination:{wanted.code}"
        )
        found = await session.scalar(select(Destination).where(Destination.code == wanted.code))
        created = found is None
        row = found or Destination(code=wanted.code, name=wanted.name, kind=wanted.kind)
        changed = []
        for field in _FIELDS:
            value = getattr(wanted, field)
            if field in SENSITIVE:
                if value is None:  # not given: kept
                    continue
                value = value or None
            if created or getattr(row, field) != value:
                setattr(row, field, value)
                changed.append(field)
        if created:
            session.add(row)
        if changed:
            await session.flush()
            await journal.record(
                session,
                "destination.created" if created else "destination.updated",
                actor_id=actor.user_id,
                actor_name=actor.username,
                ip=actor.ip,
                code=row.code,
                fields=changed,  # which fields, never what the address or contact now say
            )
        return {**destination_answer(row), "created": created, "changed": changed}

    return await idempotency.once(db, _scope(actor), key, payload, now, operation)


def destination_answer(row: Destination) -> dict[str, Any]:
    """A destination without its sensitive fields, as JSON (the API's answer, stored with its key)."""
    return {
        "code": row.code,
        "name": row.name,
        "kind": row.kind,
        "tier": row.tier,
        "min_units": row.min_units,
        "max_units": row.max_units,
        "quota_percent": None if row.quota_percent is None else float(row.quota_percent),
        "is_active": row.is_active,
    }


@dataclass(frozen=True)
class DestinationSecrets:
    """A destination with its decrypted address and contact, for its edit form only."""

    code: str
    name: str
    kind: str
    tier: int
    min_units: int | None
    max_units: int | None
    quota_percent: Decimal | None
    address: str | None
    contact: str | None
    is_active: bool


async def reveal_destination(db: Database, code: str, *, actor: Actor) -> DestinationSecrets:
    """The destination with its address and contact; the access journal records who saw them, and when."""
    async with db.transaction() as session:
        row = await session.scalar(select(Destination).where(Destination.code == code.strip().upper()))
        if row is None:
            raise NotFound("Unknown destination: {code}.", code=code)
        await journal.record(
            session,
            "destination.sensitive_viewed",
            actor_id=actor.user_id,
            actor_name=actor.username,
            ip=actor.ip,
            code=row.code,
        )
        return DestinationSecrets(
            row.code,
            row.name,
            row.kind,
            row.tier,
            row.min_units,
            row.max_units,
            row.quota_percent,
            row.address,
            row.contact,
            row.is_active,
        )
