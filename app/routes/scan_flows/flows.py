"""What each scan flow is, and the state its form carries between steps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.domain.ledger import MovementKind
from app.services.errors import N_

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

MAX_LINES = 200
RECENT_WINDOW = timedelta(hours=12)
RECENT_LIMIT = 5
TEMPLATE = "operations/flow.html"


@dataclass(frozen=True)
class Flow:
    """One scan flow: its steps, the movement it records, and the kinds of location each side accepts."""

    name: str
    title: str
    steps: tuple[str, ...]
    kind: MovementKind | None = None  # None: a blind count
    source_kinds: tuple[str, ...] = ()  # empty: any kind
    target_kinds: tuple[str, ...] = ()
    recorded: str = ""  # the confirmation, a msgid

    @property
    def counts(self) -> bool:
        return self.kind is None

    @property
    def first_location(self) -> str:
        return self.steps[0]

    def after(self, step: str) -> str:
        return self.steps[min(self.steps.index(step) + 1, len(self.steps) - 1)]

    def scans_target_after_details(self) -> bool:
        return "target" in self.steps[self.steps.index("details") :]


FLOWS = {
    "receive": Flow(
        "receive",
        N_("Receiving"),
        ("target", "product", "details", "confirm"),
        MovementKind.RECEIPT,
        target_kinds=("receiving",),
        recorded=N_("Received {quantity} × {product} at {target}."),
    ),
    "putaway": Flow(
        "putaway",
        N_("Putaway"),
        ("source", "product", "details", "target", "confirm"),
        MovementKind.PUTAWAY,
        source_kinds=("receiving",),
        target_kinds=("storage",),
        recorded=N_("Put away {quantity} × {product}: {source} → {target}."),
    ),
    "move": Flow(
        "move",
        N_("Transfer"),
        ("source", "product", "details", "target", "confirm"),
        MovementKind.TRANSFER,
        recorded=N_("Moved {quantity} × {product}: {source} → {target}."),
    ),
    "count": Flow("count", N_("Cycle count"), ("location", "product", "details")),
    "adjust": Flow(
        "adjust",
        N_("Adjustment"),
        ("location", "product", "details", "confirm"),
        MovementKind.ADJUSTMENT,
        recorded=N_("Adjusted {location}: {signed} × {product}."),
    ),
}
WRONG_KIND = {
    "receiving": N_("{code} is not a receiving dock."),
    "storage": N_("{code} is not a storage location."),
}
PROMPTS = {
    ("receive", "target"): N_("Scan the receiving dock"),
    ("putaway", "source"): N_("Scan the receiving dock"),
    ("putaway", "target"): N_("Scan the storage location"),
    ("move", "source"): N_("Scan the location to take stock from"),
    ("move", "target"): N_("Scan the destination location"),
    ("count", "location"): N_("Scan the location to count"),
    ("adjust", "location"): N_("Scan the location"),
}
STEP_LABELS = {
    "source": N_("From"),
    "target": N_("To"),
    "location": N_("Location"),
    "product": N_("Product"),
    "details": N_("Quantity"),
    "confirm": N_("Confirm"),
}
REASONS = (
    ("damaged", N_("Damaged")),
    ("expired", N_("Past its expiry date")),
    ("lost", N_("Lost or stolen")),
    ("found", N_("Found")),
    ("quality", N_("Quality sample")),
    ("entry_error", N_("Entry error")),
    ("other", N_("Other")),
)
DIRECTIONS = (("out", N_("Take out of stock")), ("in", N_("Put into stock")))
RECENT_KINDS = {
    "receive": ("receipt",),
    "putaway": ("putaway",),
    "move": ("transfer",),
    "adjust": ("adjustment",),
    "count": ("count_correction",),
}


def new_key() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------- the state the form carries


@dataclass(frozen=True)
class Line:
    """One counted line of a blind count, as keyed."""

    product: str
    lot: str
    counted: int


@dataclass(frozen=True)
class State:
    step: str
    key: str  # the idempotency key of the change this form will record
    source: str = ""
    target: str = ""
    location: str = ""
    product: str = ""
    lot: str = ""
    expiry: str = ""
    quantity: str = ""
    direction: str = ""
    reason: str = ""
    note: str = ""
    lines: tuple[Line, ...] = ()

    @classmethod
    def start(cls, flow: Flow, location: str = "") -> State:
        """A fresh form, with a fresh key; `location` keeps the first location for the next product."""
        fresh = cls(step=flow.first_location, key=new_key())
        return replace(fresh.at(flow.first_location, location), step="product") if location else fresh

    def at(self, side: str, code: str) -> State:
        """This state with `code` as its source, target or (counted, adjusted) location."""
        return replace(
            self,
            source=code if side == "source" else self.source,
            target=code if side == "target" else self.target,
            location=code if side == "location" else self.location,
        )

    @classmethod
    def read(cls, flow: Flow, data: dict[str, Any]) -> State:
        def text(name: str, limit: int = 64) -> str:
            return one(data, name).strip()[:limit]

        lines = []
        for product, lot, counted in zip(
            many(data, "line_product"), many(data, "line_lot"), many(data, "line_counted"), strict=False
        ):
            if product.strip() and counted.strip().isdecimal():
                lines.append(Line(product.strip()[:64], lot.strip()[:64], int(counted)))
        step = text("step")
        return cls(
            step=step if step in flow.steps else flow.steps[0],
            key=text("idempotency_key", 128),
            source=text("source"),
            target=text("target"),
            location=text("location"),
            product=text("product"),
            lot=text("lot"),
            expiry=text("expiry", 10),
            quantity=text("quantity", 12),
            direction=text("direction", 8),
            reason=text("reason", 16),
            note=text("note", 150),
            lines=tuple(lines[:MAX_LINES]),
        )

    @property
    def first_location(self) -> str:
        return self.source or self.location or self.target


def many(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def one(data: dict[str, Any], name: str) -> str:
    values = many(data, name)
    return values[0] if values else ""


# ---------------------------------------------------------------- what a step answers
