"""Uploaded files as tables: a header and numbered rows from CSV or XLSX, anything else refused.

Row numbers are the ones the person sees when they open the file (the header is row 1), so an
error report can send them straight to the cell.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from app.services.errors import N_, Invalid

MAX_FILE_BYTES = 20_000_000  # the same cap as the web server's request body
MAX_ROWS = 200_000  # data rows, header excluded

_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the pre-2007 binary Excel (OLE) format
# Characters no spreadsheet export contains; finding one means the "CSV" is really a binary file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEPARATORS = (";", ",", "\t")


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass
class Table:
    """The header (first non-empty row) and an iterator of (row number, cells) after it."""

    header: list[str]
    header_row: int
    rows: Iterator[tuple[int, tuple[Any, ...]]]
    _closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for closer in self._closers:
            closer()


def detect_format(content: bytes) -> FileFormat:
    """CSV or XLSX, from the bytes themselves (a renamed file is judged by what it holds)."""
    if not content.strip():
        raise Invalid("The file is empty.", field="file")
    if len(content) > MAX_FILE_BYTES:
        raise Invalid(
            "The file is larger than {limit} MB: split it.", field="file", limit=MAX_FILE_BYTES // 10**6
        )
    if content.startswith(_XLSX_MAGIC):
        return FileFormat.XLSX
    if content.startswith(_XLS_MAGIC):
        raise Invalid("This is an old Excel file (.xls): save it as .xlsx or as CSV UTF-8.", field="file")
    decode_text(content)
    return FileFormat.CSV


def decode_text(content: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM (Excel "Unicode text"), else Windows-1252 (Excel "CSV")."""
    not_text = Invalid("This file is neither a CSV nor an XLSX file.", field="file")
    utf16 = content.startswith((b"\xff\xfe", b"\xfe\xff"))
    if b"\x00" in content and not utf16:
        raise not_text
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "cp1252"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise not_text
    if _CONTROL.search(text):
        raise not_text
    return text


def sniff_separator(text: str) -> str:
    """The separator of the header line: `;` (French Excel), `,` or a tab."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first.count(sep) for sep in _SEPARATORS}
    best = max(_SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def estimate_rows(content: bytes) -> int | None:
    """About how many data rows the file holds, cheaply; None when an XLSX does not say."""
    if detect_format(content) is FileFormat.CSV:
        return content.count(b"\n") + (0 if content.endswith(b"\n") else 1) - 1
    workbook = _open_workbook(content)
    try:
        max_row = workbook.worksheets[0].max_row if workbook.worksheets else None
    finally:
        workbook.close()
    return None if max_row is None else max_row - 1


def open_table(content: bytes) -> Table:
    """The file as a table; call `close()` when done. Raises Invalid for what cannot be read."""
    if detect_format(content) is FileFormat.CSV:
        text = decode_text(content)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_separator(text))
        return _table(_csv_rows(reader), [])
    workbook = _open_workbook(content)
    if not workbook.worksheets:
        workbook.close()
        raise Invalid("The workbook has no sheet.", field="file")
    sheet = workbook.worksheets[0]
    rows = enumerate(sheet.iter_rows(values_only=True), start=1)
    return _table(_xlsx_rows(rows), [workbook.close])


def _open_workbook(content: bytes) -> Any:
    from openpyxl import load_workbook  # imported here: only imports need it, and it is slow to import

    try:
        return load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged zip or a zip of something else
        raise _unreadable_workbook() from error


def _unreadable_workbook() -> Invalid:
    return Invalid("The XLSX file could not be read: it is damaged or it is not a workbook.", field="file")


def _csv_rows(reader: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    # Numbered by record, as a spreadsheet shows them (a quoted line break stays in one row).
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, tuple(cells)
    except csv.Error as error:
        raise Invalid(
            "The CSV file could not be read near row {row}.", field="file", row=reader.line_num
        ) from error


def _xlsx_rows(rows: Iterator[tuple[int, tuple[Any, ...]]]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    try:
        yield from rows
    except Exception as error:  # a damaged sheet fails while it is read, with whatever openpyxl raises
        raise _unreadable_workbook() from error


def _blank(cells: tuple[Any, ...]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _table(rows: Iterator[tuple[int, tuple[Any, ...]]], closers: list[Any]) -> Table:
    """Take the first non-empty row as the header; count and cap the data rows after it."""
    try:
        header_row, header = next((n, cells) for n, cells in rows if not _blank(cells))
    except StopIteration:
        for closer in closers:
            closer()
        raise Invalid("The file is empty.", field="file") from None
    names = [("" if cell is None else str(cell)).strip() for cell in header]
    while names and not names[-1]:
        names.pop()
    return Table(names, header_row, _capped(rows), closers)


def _capped(rows: Iterator[tuple[int, tuple[Any, ...]]]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    seen = 0
    for number, cells in rows:
        if _blank(cells):
            continue
        seen += 1
        if seen > MAX_ROWS:
            raise Invalid("The file has more than {limit} rows: split it.", field="file", limit=MAX_ROWS)
        yield number, cells


# Cell values: what people type in spreadsheets, French and English.
_TRUE = {"1", "yes", "y", "true", "oui", "o", "vrai", "x"}
_FALSE = {"", "0", "no", "n", "false", "non", "faux"}
_NOT_WHOLE = N_("{value} is not a whole number: write it without decimals (e.g. 1234).")


def normalize(text: str) -> str:
    """`Désignation ` → `designation`, `N° lot` → `n_lot`: headers and words compared loosely."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


class CellError(Exception):
    """A cell whose value does not convert; `message` is a msgid filled with `facts`."""

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message, self.facts = message, facts


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a spreadsheet stores 3760000000017 or 42 as a float
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value).strip()


def as_whole(value: Any) -> int | None:
    """A whole number (None when blank); French thousands spaces pass, decimals do not."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise CellError(_NOT_WHOLE, value=str(value))
    text = str(value).strip()
    compact = re.sub(r"[\s\u00a0\u202f]", "", text)
    if not compact:
        return None
    if re.fullmatch(r"[+-]?\d+", compact):
        return int(compact)
    if re.fullmatch(r"[+-]?\d*[.,]\d*", compact) and any(c.isdigit() for c in compact):
        raise CellError(_NOT_WHOLE, value=text)
    raise CellError(N_("{value} is not a number."), value=text)


def as_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = normalize(as_text(value))
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CellError(N_("{value} is not yes or no (oui/non, 1/0, x or blank)."), value=as_text(value))


def as_day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = as_text(value)
    if not text:
        return None
    try:
        if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:[ T][\d:.]+)?", text):
            return date.fromisoformat(match[1])
        if match := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text):
            return date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        pass
    raise CellError(N_("{value} is not a date: write 2026-12-31 or 31/12/2026."), value=text)


def as_moment(value: Any) -> date | datetime | None:
    """A due date, with or without its time: a date alone, or a naive datetime (the site's clock).

    A spreadsheet date cell comes as midnight: midnight means the day alone.
    """
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    text = as_text(value)
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})(?:[ T](\d{1,2})[:hH](\d{2})(?::\d{2})?)?", text
    )
    if match is None or match[2] is None:
        return as_day(value) if text else None  # a day alone, or the date error message
    day = as_day(match[1])
    assert day is not None  # the pattern matched a date
    try:
        return datetime(day.year, day.month, day.day, int(match[2]), int(match[3]))  # noqa: DTZ001
    except ValueError:
        raise CellError(_NOT_MOMENT, value=text) from None


_NOT_MOMENT = N_("{value} is not a date and time: write 31/12/2026 14:30 or 2026-12-31 14:30.")
