"""Parcel labels sent straight to a network label printer (ZPL over raw TCP, usually port 9100)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.services import idempotency
from app.services.errors import Refused

TIMEOUT_SECONDS = 5.0


class PrinterUnavailable(Refused):
    status = 503
    title = "Label printer unavailable"


async def send_to_printer(
    address: tuple[str, int] | None, data: bytes, *, wait: float = TIMEOUT_SECONDS
) -> int:
    """Write a print job to the printer and close; returns the bytes sent. Refused if none is set up or
    it does not answer within `wait` seconds."""
    if address is None:
        raise PrinterUnavailable(
            "No label printer is set up (setting LABEL_PRINTER): download the labels and print them."
        )
    host, port = address
    printer = f"{host}:{port}"
    try:
        async with asyncio.timeout(wait):
            _reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(data)
                await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()
    except (OSError, TimeoutError):
        raise PrinterUnavailable(
            "The label printer {printer} does not answer: check that it is on and connected, "
            "or download the labels.",
            printer=printer,
        ) from None
    return len(data)


async def print_labels(
    db: Database,
    address: tuple[str, int] | None,
    zpl: str,
    *,
    document: str,
    scope: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Send a shipment's labels once per key: a double tap does not print them twice."""
    key = idempotency.check_key(idempotency_key)
    payload = {"labels": document, "printer": list(address) if address else None}

    async def operation(_session: AsyncSession) -> dict[str, Any]:
        sent = await send_to_printer(address, zpl.encode())
        return {
            "document": document,
            "bytes": sent,
            "printer": f"{address[0]}:{address[1]}" if address else None,
        }

    return await idempotency.once(db, scope, key, payload, now, operation)
