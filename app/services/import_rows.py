"""The columns of each import, and every row read into a record or into errors naming row and column.

Nothing here touches the database: what needs it (unknown SKU, a GTIN owned elsewhere) is checked
in bulk by `app.services.imports` once every row has been read.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from app.services.catalog import LocationData, ProductData, check_location, check_product
from app.services.errors import N_, Invalid
from app.services.import_files import CellError, as_day, as_flag, as_moment, as_text, as_whole, normalize
from app.services.orders import MAX_PRIORITY, MAX_QUANTITY, check_number

MAX_ERRORS = 10_000  # kept for the report; the count goes on beyond
MAX_WHOLE = 1_000_000_000


class ImportKind(StrEnum):
    PRODUCTS = "products"
    LOCATIONS = "locations"
    STOCK = "stock"
    ORDERS = "orders"


@dataclass(frozen=True)
class Problem:
    """One error: the row as the file shows it (None for the whole file), the column, a msgid and facts."""

    row: int | None
    column: str
    message: str
    facts: dict[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        facts = json.loads(json.dumps(self.facts, default=str))
        return {"row": self.row, "column": self.column, "message": self.message, "facts": facts}


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class StockRow:
    site: str
    location: str
    sku: str
    lot: str | None
    expiry: date | None
    quantity: int


@dataclass(frozen=True)
class OrderRow:
    """One line of one order; the rows of an order repeat its site, destination, due date and options."""

    order: str
    site: str
    destination: str
    sku: str  # or a GTIN
    quantity: int
    due: date | datetime | None  # a day alone, or a day and time of the site's clock
    priority: int | None
    release: bool


Record = ProductData | LocationData | StockRow | OrderRow

_SITE = Column("site", ("entrepot", "depot"), True, N_("Site code, e.g. LYS"))
COLUMNS: dict[ImportKind, tuple[Column, ...]] = {
    ImportKind.PRODUCTS: (
        Column("sku", ("article", "code_article", "ref", "reference"), True, N_("Product code (SKU)")),
        Column("name", ("nom", "designation", "libelle", "description"), True, N_("Product name")),
        Column("unit", ("unite",), help=N_("Unit of count; default: unit")),
        Column("pack_size", ("pcb", "colisage", "par_combien"), help=N_("Units per pack; default: 1")),
        Column("lot_tracked", ("suivi_lot", "gestion_lot"), help=N_("Tracked by lot: yes or no")),
        Column("expiry_tracked", ("suivi_dlc", "gestion_dlc"), help=N_("Tracked by expiry date: yes or no")),
        Column("round_up_packs", ("arrondi_colis",), help=N_("Round needs up to whole packs: yes or no")),
        Column(
            "allow_eaches",
            ("vente_unite", "unites_libres", "au_detail"),
            help=N_("Runs may send loose units below a pack: yes or no"),
        ),
        Column(
            "holdback_units",
            ("stock_securite", "reserve", "retenue"),
            help=N_("Units dispatch runs leave unreserved at each site; default: 0"),
        ),
        Column("gtins", ("gtin", "ean", "ean13", "code_barre"), help=N_("GTIN/EAN codes, separated by |")),
    ),
    ImportKind.LOCATIONS: (
        _SITE,
        Column("code", ("emplacement", "code_emplacement", "location"), True, N_("Location code")),
        Column("kind", ("type", "nature"), help=N_("storage, receiving, dispatch or quarantine")),
        Column("zone", (), help=N_("Zone; default: the start of the code")),
        Column(
            "pick_seq", ("sequence", "ordre", "ordre_preparation"), help=N_("Pick-path order; default: 0")
        ),
        Column("barcode", ("code_barre",), help=N_("Barcode; default: LOC-site-code")),
    ),
    ImportKind.STOCK: (
        _SITE,
        Column("location", ("emplacement",), True, N_("Location code or barcode")),
        Column("sku", ("article", "code_article", "ref", "reference"), True, N_("Product code (SKU)")),
        Column("lot", ("numero_lot", "n_lot", "no_lot"), help=N_("Lot, for products tracked by lot")),
        Column("expiry", ("dlc", "ddm", "date_limite"), help=N_("Expiry date: 2026-12-31 or 31/12/2026")),
        Column("quantity", ("quantite", "qte", "qty"), True, N_("On hand, in units: a whole number")),
    ),
    ImportKind.ORDERS: (
        Column(
            "order",
            ("commande", "numero", "numero_commande", "n_commande", "no_commande", "number"),
            True,
            N_("Order number; the lines of one order share it"),
        ),
        _SITE,
        Column(
            "destination",
            ("destinataire", "code_destinataire", "magasin", "client"),
            True,
            N_("Destination code"),
        ),
        Column(
            "sku", ("article", "code_article", "ref", "reference", "gtin", "ean"), True, N_("SKU or GTIN")
        ),
        Column("quantity", ("quantite", "qte", "qty"), True, N_("Units ordered: a whole number")),
        Column(
            "due",
            ("echeance", "date_livraison", "livraison", "date_due", "due_date"),
            True,
            N_("Due date: 31/12/2026 (end of that day) or 31/12/2026 14:30"),
        ),
        Column("priority", ("priorite",), help=N_("1 (served first) to 99; default: the destination's tier")),
        Column(
            "release",
            ("lancer", "lancement", "liberer", "liberation"),
            help=N_("Release at once: yes or no; default: no"),
        ),
    ),
}
_LOCATION_KINDS = {
    "storage": "storage",
    "stockage": "storage",
    "receiving": "receiving",
    "reception": "receiving",
    "dispatch": "dispatch",
    "expedition": "dispatch",
    "quarantine": "quarantine",
    "quarantaine": "quarantine",
}


def map_columns(kind: ImportKind, header: list[str]) -> tuple[dict[str, int], list[Problem]]:
    """Where each known column is; unknown, doubled and missing columns are errors of the whole file."""
    columns = COLUMNS[kind]
    by_word = {word: col.name for col in columns for word in (col.name, *col.aliases)}
    expected = ", ".join(col.name for col in columns)
    index: dict[str, int] = {}
    problems = []
    for position, name in enumerate(header):
        if not name:
            continue
        canonical = by_word.get(normalize(name))
        if canonical is None:
            problems.append(
                Problem(
                    None,
                    name,
                    N_("Unknown column {column}; the columns are: {expected}."),
                    {"column": name, "expected": expected},
                )
            )
        elif canonical in index:
            first = header[index[canonical]]
            problems.append(
                Problem(
                    None,
                    name,
                    N_("Column {column} appears twice (also as {other})."),
                    {"column": name, "other": first},
                )
            )
        else:
            index[canonical] = position
    for col in columns:
        if col.required and col.name not in index:
            problems.append(Problem(None, col.name, N_("Missing column {column}."), {"column": col.name}))
    return index, problems


class _Cells:
    """One row's cells by column name; a value that does not convert is noted and replaced by a default."""

    def __init__(
        self, number: int, cells: tuple[Any, ...], index: dict[str, int], headers: dict[str, str]
    ) -> None:
        self.number, self.cells, self.index, self.headers = number, cells, index, headers
        self.problems: list[Problem] = []

    def fail(self, name: str, message: str, **facts: Any) -> None:
        self.problems.append(Problem(self.number, self.headers.get(name, name), message, facts))

    def raw(self, name: str) -> Any:
        position = self.index.get(name)
        return self.cells[position] if position is not None and position < len(self.cells) else None

    def text(self, name: str, *, required: bool = False) -> str:
        value = as_text(self.raw(name))
        if required and not value:
            self.fail(name, N_("This cell is empty: it needs a value."))
        return value

    def whole(self, name: str, default: int | None) -> int:
        try:
            value = as_whole(self.raw(name))
        except CellError as bad:
            self.fail(name, bad.message, **bad.facts)
            return default or 0
        if value is None:
            if default is None:
                self.fail(name, N_("This cell is empty: it needs a value."))
            return default or 0
        if not 0 <= value <= MAX_WHOLE:
            self.fail(name, N_("{value} is out of range: from 0 to {max}."), value=value, max=MAX_WHOLE)
        return value

    def whole_or_none(self, name: str) -> int | None:
        """An optional whole number: blank is None."""
        return self.whole(name, None) if as_text(self.raw(name)) else None

    def moment(self, name: str) -> date | datetime | None:
        try:
            value = as_moment(self.raw(name))
        except CellError as bad:
            self.fail(name, bad.message, **bad.facts)
            return None
        if value is None:
            self.fail(name, N_("This cell is empty: it needs a value."))
        return value

    def flag(self, name: str) -> bool:
        try:
            return as_flag(self.raw(name))
        except CellError as bad:
            self.fail(name, bad.message, **bad.facts)
            return False

    def day(self, name: str) -> date | None:
        try:
            return as_day(self.raw(name))
        except CellError as bad:
            self.fail(name, bad.message, **bad.facts)
            return None

    def location_kind(self, name: str) -> str:
        word = normalize(self.text(name)) or "storage"
        if word not in _LOCATION_KINDS:
            self.fail(name, N_("Unknown location kind: {kind}."), kind=self.text(name))
        return _LOCATION_KINDS.get(word, "storage")


def _product(cells: _Cells) -> ProductData:
    return ProductData(
        sku=cells.text("sku"),
        name=cells.text("name"),
        unit=cells.text("unit") or "unit",
        pack_size=cells.whole("pack_size", 1),
        lot_tracked=cells.flag("lot_tracked"),
        expiry_tracked=cells.flag("expiry_tracked"),
        round_up_packs=cells.flag("round_up_packs"),
        gtins=tuple(code.strip() for code in cells.text("gtins").split("|") if code.strip()),
        allow_eaches=cells.flag("allow_eaches"),
        holdback_units=cells.whole("holdback_units", 0),
    )


def _location(cells: _Cells) -> LocationData:
    return LocationData(
        site_code=cells.text("site", required=True).upper(),
        code=cells.text("code"),
        kind=cells.location_kind("kind"),
        zone=cells.text("zone"),
        pick_seq=cells.whole("pick_seq", 0),
        barcode=cells.text("barcode") or None,
    )


def _stock(cells: _Cells) -> StockRow:
    return StockRow(
        site=cells.text("site", required=True).upper(),
        location=cells.text("location", required=True),
        sku=cells.text("sku", required=True),
        lot=cells.text("lot") or None,
        expiry=cells.day("expiry"),
        quantity=cells.whole("quantity", None),
    )


def _order(cells: _Cells) -> OrderRow:
    return OrderRow(
        order=cells.text("order", required=True),
        site=cells.text("site", required=True).upper(),
        destination=cells.text("destination", required=True).upper(),
        sku=cells.text("sku", required=True),
        quantity=cells.whole("quantity", None),
        due=cells.moment("due"),
        priority=cells.whole_or_none("priority"),
        release=cells.flag("release"),
    )


def _check_order_row(row: OrderRow) -> OrderRow:
    """The rules of an order's screen and API, named by the file's columns."""
    try:
        number = check_number(row.order)
    except Invalid as invalid:
        raise Invalid(invalid.message, field="order", **invalid.facts) from None
    if not 1 <= row.quantity <= MAX_QUANTITY:
        raise Invalid("The quantity is a whole number from 1 to {max}.", field="quantity", max=MAX_QUANTITY)
    if row.priority is not None and not 1 <= row.priority <= MAX_PRIORITY:
        raise Invalid(
            "The priority is a whole number from 1 (served first) to {max}.",
            field="priority",
            max=MAX_PRIORITY,
        )
    return replace(row, order=number)


def _checked(record: Record) -> Record:
    """The catalogue's own rules, so an import accepts exactly what the screens and the API accept."""
    if isinstance(record, ProductData):
        return check_product(record)
    if isinstance(record, LocationData):
        return check_location(record)
    if isinstance(record, OrderRow):
        return _check_order_row(record)
    return record


def _keys(record: Record) -> Iterator[tuple[tuple[str, ...], str, str, dict[str, Any]]]:
    """The values that must be unique in a file: (key, column, message, facts)."""
    if isinstance(record, ProductData):
        yield ("sku", record.sku), "sku", N_("SKU {sku} already appears in row {row}."), {"sku": record.sku}
        for gtin in record.gtins:
            yield (
                ("gtin", gtin),
                "gtins",
                N_("GTIN {gtin} is also given in row {row}."),
                {"gtin": gtin.lstrip("0")},
            )
    elif isinstance(record, LocationData):
        facts = {"site": record.site_code, "code": record.code}
        yield (
            ("code", record.site_code, record.code),
            "code",
            N_("Location {code} of site {site} already appears in row {row}."),
            facts,
        )
        yield (
            ("barcode", record.barcode or ""),
            "barcode",
            N_("Barcode {barcode} is also given in row {row}."),
            {"barcode": record.barcode},
        )
    elif isinstance(record, OrderRow):
        yield (
            ("order-line", record.order, record.sku),
            "sku",
            N_("{sku} is already ordered in row {row} of order {order}."),
            {"sku": record.sku, "order": record.order},
        )
    else:
        key = ("line", record.site, record.location.upper(), record.sku, record.lot or "")
        yield key, "location", N_("The same site, location, SKU and lot already appear in row {row}."), {}


_PARSERS: dict[ImportKind, Callable[[_Cells], Record]] = {
    ImportKind.PRODUCTS: _product,
    ImportKind.LOCATIONS: _location,
    ImportKind.STOCK: _stock,
    ImportKind.ORDERS: _order,
}


class RowReader:
    """Reads the rows of one file; keeps the good records and every problem (up to MAX_ERRORS)."""

    def __init__(self, kind: ImportKind, header: list[str]) -> None:
        self.kind = kind
        self.index, file_problems = map_columns(kind, header)
        self.headers = {name: header[position] for name, position in self.index.items()}
        self.named = {position for position, name in enumerate(header) if name}
        self.records: list[tuple[int, Record]] = []
        self.problems: list[Problem] = []
        self.error_count = self.rows_read = 0
        self._seen: dict[tuple[str, ...], int] = {}
        for problem in file_problems:
            self.add(problem)
        # With the columns wrong, every row would only repeat it: the header is the one thing to fix.
        self.usable = not file_problems

    def add(self, problem: Problem) -> None:
        self.error_count += 1
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(problem)

    def read_many(self, rows: Iterator[tuple[int, tuple[Any, ...]]], limit: int) -> int:
        """Read up to `limit` rows; returns how many were read (0 at the end of the file)."""
        if not self.usable:
            return 0
        count = 0
        for number, values in itertools.islice(rows, limit):
            self.read(number, values)
            count += 1
        self.rows_read += count
        return count

    def read(self, number: int, values: tuple[Any, ...]) -> None:
        cells = _Cells(number, values, self.index, self.headers)
        stray = next((i for i, v in enumerate(values) if i not in self.named and as_text(v)), None)
        if stray is not None:  # a misaligned row (decimal comma in a comma-separated file) or a header gap
            cells.fail(
                _letter(stray),
                N_("A value in a column with no header: check the separator and the header row."),
            )
        record = _PARSERS[self.kind](cells)
        try:  # also after a bad cell (replaced by its default), so one pass reports more of the row
            record = _checked(record)
        except Invalid as invalid:
            if not any(p.column == self.headers.get(invalid.field or "") for p in cells.problems):
                cells.fail(invalid.field or "", invalid.message, **invalid.facts)
        for problem in cells.problems:
            self.add(problem)
        if not cells.problems and self._unique(number, record):
            self.records.append((number, record))

    def _unique(self, number: int, record: Record) -> bool:
        clashes = 0
        for key, column, message, facts in _keys(record):
            first = self._seen.setdefault(key, number)
            if first != number:
                self.add(Problem(number, self.headers.get(column, column), message, {**facts, "row": first}))
                clashes += 1
        return clashes == 0


def _letter(position: int) -> str:
    """The spreadsheet letter of a column: 0 → A, 27 → AB."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
