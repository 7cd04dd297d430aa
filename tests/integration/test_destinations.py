"""Destinations through the service: validated, saved by code, journaled without their sensitive data."""

from decimal import Decimal

import pytest
from sqlalchemy import select, text

from app.db.models import AccessEvent, Destination
from app.services.destinations import DestinationData, reveal_destination, save_destination
from app.services.errors import Invalid, NotFound
from tests.integration.order_fixtures import NOW, actor

BRON = DestinationData(
    "mag-042",
    "Magasin  Bron",
    "store",
    1,
    12,
    600,
    Decimal("12.5"),
    "12 rue de la République\n69500 Bron",
    "Mme Durand",
)


async def save(db, data, key="k"):
    return await save_destination(db, data, actor=await actor(db), idempotency_key=key, now=NOW)


async def journal(db):
    async with db.sessions() as s:
        return (
            await s.execute(
                select(AccessEvent.event, AccessEvent.detail)
                .where(AccessEvent.event.like("destination.%"))
                .order_by(AccessEvent.id)
            )
        ).all()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "MAG 42"}, "code"),
        ({"name": "  "}, "name"),
        ({"kind": "warehouse"}, "kind"),
        ({"tier": 0}, "tier"),
        ({"min_units": -1}, "min_units"),
        ({"min_units": 50, "max_units": 10}, "max_units"),
        ({"quota_percent": Decimal("100.5")}, "quota_percent"),
        ({"quota_percent": Decimal("12.345")}, "quota_percent"),
        ({"address": "x" * 501}, "address"),
    ],
)
async def test_a_malformed_destination_is_refused_naming_the_field(db, change, field):
    with pytest.raises(Invalid) as refused:
        await save(db, DestinationData(**{**vars(BRON), **change}))
    assert refused.value.field == field
    async with db.sessions() as s:
        assert (await s.execute(select(Destination.id))).all() == []


async def test_a_destination_is_created_by_code_and_its_address_is_encrypted_at_rest(db):
    status, answer = await save(db, BRON)
    assert (status, answer["code"], answer["name"], answer["created"]) == (
        201,
        "MAG-042",
        "Magasin Bron",
        True,
    )
    async with db.sessions() as s:
        raw = await s.scalar(text("SELECT address FROM destinations WHERE code = 'MAG-042'"))
        row = await s.scalar(select(Destination).where(Destination.code == "MAG-042"))
    assert "Bron" not in raw and row.address == "12 rue de la République\n69500 Bron"
    assert row.quota_percent == Decimal("12.50")


async def test_an_update_keeps_the_address_when_none_is_given_and_clears_it_when_empty(db):
    await save(db, BRON, key="1")
    _status, kept = await save(db, DestinationData("MAG-042", "Magasin Bron", tier=2), key="2")
    assert kept["created"] is False
    assert kept["changed"] == ["tier", "min_units", "max_units", "quota_percent"]
    _status, cleared = await save(db, DestinationData("MAG-042", "Magasin Bron", tier=2, contact=""), key="3")
    assert cleared["changed"] == ["contact"]
    async with db.sessions() as s:
        row = await s.scalar(select(Destination).where(Destination.code == "MAG-042"))
    assert (row.address, row.contact, row.tier) == ("12 rue de la République\n69500 Bron", None, 2)


async def test_saving_the_same_again_changes_and_journals_nothing_and_a_replay_gets_the_first_answer(db):
    first = await save(db, BRON, key="1")
    assert await save(db, BRON, key="1") == first
    _status, again = await save(db, BRON, key="2")
    assert again["changed"] == []
    assert [event for event, _ in await journal(db)] == ["destination.created"]


async def test_the_journal_names_the_fields_changed_and_who_looked_never_what_they_say(db):
    await save(db, BRON, key="1")
    await save(db, DestinationData(**{**vars(BRON), "address": "1 place Bellecour"}), key="2")
    shown = await reveal_destination(db, "mag-042", actor=await actor(db, "alice"))
    assert shown.address == "1 place Bellecour" and shown.contact == "Mme Durand"
    events = await journal(db)
    assert [event for event, _ in events] == [
        "destination.created",
        "destination.updated",
        "destination.sensitive_viewed",
    ]
    assert events[1][1] == {"code": "MAG-042", "fields": ["address"]}
    assert "Bellecour" not in str(events) and "Durand" not in str(events)


async def test_revealing_an_unknown_destination_is_not_found_and_journals_nothing(db):
    with pytest.raises(NotFound):
        await reveal_destination(db, "NOPE", actor=await actor(db))
    assert await journal(db) == []
