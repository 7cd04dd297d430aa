"""Shipments: their numbers, the numbers of backorders, and the ZPL labels stuck on each parcel."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

NUMBER_LIMIT = 32  # the order and shipment number columns
_BACKORDER_SUFFIX = re.compile(r"-R(\d+)$")


def shipment_number(day: date, sequence: int) -> str:
    """EXP-YYYYMMDD-NNNN: the day's shipments in the order they were closed."""
    if sequence < 1:
        raise ValueError("shipments of a day are numbered from 1")
    return f"EXP-{day:%Y%m%d}-{sequence:04d}"


def backorder_number(number: str, *, is_backorder: bool, taken: Collection[str]) -> str:
    """The first free `<root>-R<n>`: a backorder of a backorder goes on counting from its root.

    ORD-7 gives ORD-7-R1; shipping ORD-7-R1 short gives ORD-7-R2, not ORD-7-R1-R1.
    """
    root, start = number, 1
    found = _BACKORDER_SUFFIX.search(number) if is_backorder else None
    if found:
        root, start = number[: found.start()], int(found.group(1)) + 1
    n = start
    while True:
        suffix = f"-R{n}"
        candidate = root[: NUMBER_LIMIT - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


# ---------------------------------------------------------------- labels


@dataclass(frozen=True, slots=True)
class ParcelLabel:
    shipment: str
    site: str
    destination_code: str
    destination_name: str
    caption: str  # "Colis 2/3", already in the warehouse's language


def zpl_field(text: str) -> str:
    """Text as ZPL field data under ^FH: the characters ZPL reads as commands become hex escapes."""
    out = []
    for char in text.replace("\r", " ").replace("\n", " "):
        if char in "^~_\\":
            out.append("".join(f"_{byte:02X}" for byte in char.encode()))
        else:
            out.append(char)
    return "".join(out)


def zpl_label(label: ParcelLabel) -> str:
    """One 4×6 inch label at 203 dpi: site, destination, the shipment as Code 128, parcel n/N."""
    return "\n".join(
        [
            "^XA",
            "^CI28",  # field data is UTF-8 (accents in names)
            "^PW812^LL1218",
            f"^FO40,40^A0N,36,36^FH^FD{zpl_field(label.site)}^FS",
            f"^FO40,110^A0N,70,70^FH^FD{zpl_field(label.destination_code)}^FS",
            f"^FO40,200^A0N,44,44^FB730,2,0,L^FH^FD{zpl_field(label.destination_name)}^FS",
            f"^FO40,340^BY3,3,200^BCN,200,Y,N,N^FH^FD{zpl_field(label.shipment)}^FS",
            f"^FO40,640^A0N,90,90^FH^FD{zpl_field(label.caption)}^FS",
            "^XZ",
        ]
    )


def zpl_labels(labels: Sequence[ParcelLabel]) -> str:
    """Every parcel's label, one after the other, as one print job."""
    return "\n".join(zpl_label(label) for label in labels) + "\n"
