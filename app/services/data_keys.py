"""Key rotation of the columns encrypted at rest (app/db/crypto.py)."""

from __future__ import annotations

from advanced_alchemy.base import orm_registry
from advanced_alchemy.types import EncryptedString, EncryptedText
from sqlalchemy import text

from app.db.crypto import KeyringBackend
from app.db.session import Database


def encrypted_columns() -> dict[str, list[str]]:
    """Every encrypted column of the schema, by table (read from the models, so none is forgotten)."""
    found: dict[str, list[str]] = {}
    for table in orm_registry.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedString | EncryptedText):
                found.setdefault(table.name, []).append(column.name)
    return found


async def rotate_data_key(db: Database) -> int:
    """Re-encrypt every encrypted value with the current DATA_KEY; returns the values rewritten.

    Values are read with any configured key (DATA_KEY or DATA_KEY_PREVIOUS), in one transaction with the
    rows locked, so the old key can be dropped once this has run.
    """
    backend = KeyringBackend()
    rewritten = 0
    async with db.transaction() as session:
        for table, columns in encrypted_columns().items():
            listed = ", ".join(columns)
            rows = await session.execute(text(f"SELECT id, {listed} FROM {table} ORDER BY id FOR UPDATE"))
            for row in rows.all():
                fresh = {
                    name: backend.rotate(value) for name, value in zip(columns, row[1:], strict=True) if value
                }
                if fresh:
                    assignments = ", ".join(f"{name} = :{name}" for name in fresh)
                    await session.execute(
                        text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {**fresh, "id": row[0]}
                    )
                    rewritten += len(fresh)
    return rewritten
