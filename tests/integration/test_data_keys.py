"""Sensitive columns are encrypted at rest, and a key rotation leaves them readable with the new key only."""

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select, text

from app.db.crypto import configure_keys
from app.db.models import Destination
from app.services.data_keys import encrypted_columns, rotate_data_key

OLD, NEW = "old-key-" + "o" * 32, "new-key-" + "n" * 32
ADDRESS = "12 rue de la Paix, 75002 Paris"


@pytest.fixture
def restore_keys(test_settings):
    yield
    configure_keys(test_settings.security.data_key, test_settings.security.data_key_previous)


async def stored(db) -> tuple[str, str | None]:
    async with db.sessions() as s:
        return (await s.execute(text("SELECT address, contact FROM destinations"))).one()


async def read(db) -> Destination:
    async with db.sessions() as s:
        return await s.scalar(select(Destination))


def test_every_personal_column_of_destinations_is_encrypted():
    assert set(encrypted_columns()["destinations"]) == {"address", "contact"}


async def test_a_rotation_re_encrypts_with_the_new_key(db, restore_keys):
    configure_keys(OLD)
    async with db.transaction() as s:
        s.add(Destination(code="M1", name="Magasin 1", kind="store", address=ADDRESS, contact=None))
    before = await stored(db)
    assert ADDRESS not in before[0] and before[0].startswith("gAAAA")  # a Fernet token, not the text

    configure_keys(NEW, [OLD])  # the new key, the old one still accepted for reading
    assert (await read(db)).address == ADDRESS
    assert await rotate_data_key(db) == 1

    configure_keys(NEW)  # the old key is gone
    assert (await read(db)).address == ADDRESS
    assert (await stored(db))[0] != before[0]


async def test_without_the_key_a_value_cannot_be_read(db, restore_keys):
    configure_keys(OLD)
    async with db.transaction() as s:
        s.add(Destination(code="M1", name="Magasin 1", kind="store", address=ADDRESS))
    configure_keys(NEW)
    with pytest.raises(InvalidToken):
        await read(db)
