"""Reading import files: what people's spreadsheets hold, read into records or into row-level errors."""

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from app.services import import_files
from app.services.catalog import LocationData, ProductData
from app.services.errors import Invalid
from app.services.import_files import (
    MAX_FILE_BYTES,
    CellError,
    as_day,
    as_flag,
    as_whole,
    detect_format,
    estimate_rows,
    open_table,
    sniff_separator,
)
from app.services.import_rows import ImportKind, RowReader, StockRow


def read(content: bytes, kind: ImportKind) -> RowReader:
    table = open_table(content)
    try:
        reader = RowReader(kind, table.header)
        while reader.read_many(table.rows, 100):
            pass
    finally:
        table.close()
    return reader


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def errors(reader: RowReader) -> list[tuple[int | None, str, str]]:
    return [(p.row, p.column, p.message.format(**p.facts)) for p in reader.problems]


# --- headers -----------------------------------------------------------------------------------


def test_french_headers_are_understood_whatever_their_case_and_accents():
    content = csv_bytes(
        "Article;Désignation;PCB;EAN;Suivi lot;Suivi DLC\n"
        "SKU-1;Eau 1,5 L;6;3760000000017|3760000000024;oui;x\n"
    )
    reader = read(content, ImportKind.PRODUCTS)
    assert errors(reader) == []
    [(row, product)] = reader.records
    assert row == 2
    assert product == ProductData(
        "SKU-1", "Eau 1,5 L", "unit", 6, True, True, False, ("03760000000017", "03760000000024")
    )


def test_missing_unknown_and_doubled_columns_are_errors_of_the_whole_file():
    content = csv_bytes("sku,article,prix\nA,B,3\n")
    reader = read(content, ImportKind.PRODUCTS)
    assert [(row, column) for row, column, _message in errors(reader)] == [
        (None, "article"),
        (None, "prix"),
        (None, "name"),
    ]
    assert "also as sku" in errors(reader)[0][2]
    assert reader.records == [] and reader.rows_read == 0  # the rows are not read against a wrong header


# --- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [";", ",", "\t"])
def test_the_separator_is_found_from_the_header(separator):
    header = separator.join(["site", "code", "kind"])
    assert sniff_separator(f"{header}\nLYS{separator}A-01{separator}storage\n") == separator


def test_a_byte_order_mark_does_not_change_the_first_column():
    content = b"\xef\xbb\xbf" + csv_bytes("site;code\nLYS;A-01-01\n")
    reader = read(content, ImportKind.LOCATIONS)
    assert errors(reader) == []
    assert reader.records[0][1].code == "A-01-01"


def test_a_windows_1252_file_from_french_excel_is_read():
    content = csv_bytes("sku;désignation\nSKU-1;Crème fraîche\n", "cp1252")
    reader = read(content, ImportKind.PRODUCTS)
    assert reader.records[0][1].name == "Crème fraîche"


def test_excel_unicode_text_is_read_with_its_tabs():
    content = "sku\tname\nSKU-1\tCrème\n".encode("utf-16")
    reader = read(content, ImportKind.PRODUCTS)
    assert [(row, p.sku, p.name) for row, p in reader.records] == [(2, "SKU-1", "Crème")]


def test_an_xlsx_workbook_is_read_with_its_dates_and_numbers():
    content = xlsx_bytes(
        [
            ["Entrepôt", "Emplacement", "Article", "Lot", "DLC", "Quantité"],
            ["LYS", "A-01-01", "SKU-YOG", "L1", datetime(2026, 12, 31), 24],
            [],
            ["LYS", "A-01-02", 12345, None, None, 6.0],
        ]
    )
    assert detect_format(content).value == "xlsx"
    reader = read(content, ImportKind.STOCK)
    assert errors(reader) == []
    assert reader.records == [
        (2, StockRow("LYS", "A-01-01", "SKU-YOG", "L1", date(2026, 12, 31), 24)),
        (4, StockRow("LYS", "A-01-02", "12345", None, None, 6)),
    ]


@pytest.mark.parametrize(
    "content",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" * 64,  # a Windows program renamed .csv
        b"%PDF-1.7\n\x01\x02\x03\x04\x05",
        bytes(range(256)) * 8,
    ],
)
def test_a_binary_file_is_refused_as_neither_csv_nor_xlsx(content):
    with pytest.raises(Invalid, match="neither a CSV nor an XLSX"):
        detect_format(content)


def test_a_damaged_workbook_and_an_old_xls_are_refused_with_their_reason():
    with pytest.raises(Invalid, match="could not be read"):
        open_table(b"PK\x03\x04" + b"\x00garbage" * 20)
    with pytest.raises(Invalid, match=r"\.xls"):
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)


def test_empty_and_oversized_files_are_refused():
    with pytest.raises(Invalid, match="empty"):
        detect_format(b" \r\n")
    with pytest.raises(Invalid, match="larger than") as refused:
        detect_format(b"a" * (MAX_FILE_BYTES + 1))
    assert refused.value.facts == {"limit": 20}


def test_a_file_with_too_many_rows_is_refused_while_it_is_read(monkeypatch):
    monkeypatch.setattr(import_files, "MAX_ROWS", 10)
    with pytest.raises(Invalid, match="more than") as refused:
        read(csv_bytes("sku;name\n" + "A;B\n" * 11), ImportKind.PRODUCTS)
    assert refused.value.facts == {"limit": 10}
    assert (
        len(
            read(
                csv_bytes("sku;name\n" + "\n".join(f"A{n};B" for n in range(10))), ImportKind.PRODUCTS
            ).records
        )
        == 10
    )


def test_the_number_of_rows_is_estimated_without_reading_the_file():
    assert estimate_rows(csv_bytes("sku;name\n" + "A;B\n" * 10)) == 10
    assert estimate_rows(xlsx_bytes([["sku", "name"]] + [["A", "B"]] * 7)) == 7


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("12", 12), (" 1 234 ", 1234), ("1\u202f234", 1234), (7.0, 7), ("", None)]
)
def test_whole_numbers_accept_french_thousands_spaces(value, expected):
    assert as_whole(value) == expected


@pytest.mark.parametrize("value", ["12,5", "12.5", "0,0", 12.5])
def test_decimals_are_refused_for_whole_quantities(value):
    with pytest.raises(CellError) as refused:
        as_whole(value)
    assert "is not a whole number" in refused.value.message


def test_a_decimal_comma_in_a_quantity_is_reported_at_its_row_and_column():
    content = csv_bytes(
        "site;emplacement;article;quantité\nLYS;A-01-01;SKU-1;12,5\nLYS;A-01-02;SKU-1;douze\n"
    )
    reader = read(content, ImportKind.STOCK)
    assert errors(reader) == [
        (2, "quantité", "12,5 is not a whole number: write it without decimals (e.g. 1234)."),
        (3, "quantité", "douze is not a number."),
    ]
    assert reader.records == []


def test_a_decimal_comma_in_a_comma_separated_file_is_caught_as_a_stray_value():
    content = csv_bytes("site,location,sku,quantity\nLYS,A-01-01,SKU-1,12,5\n")
    [(row, column, message)] = errors(read(content, ImportKind.STOCK))
    assert (row, column) == (2, "E")
    assert "no header" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("oui", True), ("Non", False), ("yes", True), ("no", False), ("1", True), ("0", False)],
        *[("TRUE", True), ("false", False), ("x", True), ("", False), (None, False), (True, True), (1, True)],
    ],
)
def test_yes_and_no_are_read_in_french_and_english(value, expected):
    assert as_flag(value) is expected


def test_an_unclear_yes_or_no_is_refused():
    with pytest.raises(CellError):
        as_flag("peut-être")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("31/12/2026", date(2026, 12, 31)),
        ("1/2/2027", date(2027, 2, 1)),
        ("2026-12-31 00:00:00", date(2026, 12, 31)),
        (datetime(2026, 12, 31, 0, 0), date(2026, 12, 31)),
        (date(2026, 12, 31), date(2026, 12, 31)),
        ("", None),
    ],
)
def test_dates_are_read_as_iso_or_day_month_year(value, expected):
    assert as_day(value) == expected


@pytest.mark.parametrize("value", ["31/02/2026", "12/31/26", "demain", "2026-13-01"])
def test_impossible_or_ambiguous_dates_are_refused(value):
    with pytest.raises(CellError, match="not a date"):
        as_day(value)


# --- rows ---------------------------------------------------------------------------------------


def test_every_row_is_checked_and_every_error_reported():
    content = csv_bytes(
        "sku;name;pack_size;lot_tracked;expiry_tracked;gtins\n"
        "A-1;Eau;6;non;non;\n"
        "bad sku!;Eau;x;peut-être;non;\n"
        "A-2;;6;non;oui;\n"
        "A-3;Lait;6;non;non;3760000000018\n"
    )
    reader = read(content, ImportKind.PRODUCTS)
    found = [(row, column) for row, column, _message in errors(reader)]
    assert found == [(3, "pack_size"), (3, "lot_tracked"), (3, "sku"), (4, "name"), (5, "gtins")]
    assert [row for row, _product in reader.records] == [2]


def test_duplicate_rows_are_reported_with_both_row_numbers():
    content = csv_bytes(
        "sku;name;gtins\nA-1;Eau;3760000000017\nA-2;Lait;\nA-1;Eau bis;\nA-3;Jus;3760000000017\n"
    )
    reader = read(content, ImportKind.PRODUCTS)
    assert errors(reader) == [
        (4, "sku", "SKU A-1 already appears in row 2."),
        (5, "gtins", "GTIN 3760000000017 is also given in row 2."),
    ]


def test_duplicate_locations_and_stock_lines_are_reported_with_both_row_numbers():
    locations = read(csv_bytes("site;code\nLYS;A-01\nlys;a-01\n"), ImportKind.LOCATIONS)
    assert errors(locations)[0] == (3, "code", "Location A-01 of site LYS already appears in row 2.")
    stock = read(
        csv_bytes("site;location;sku;lot;quantity\nLYS;A-01;S1;L1;3\nLYS;A-01;S1;L2;3\nLYS;a-01;S1;L1;4\n"),
        ImportKind.STOCK,
    )
    assert errors(stock) == [(4, "location", "The same site, location, SKU and lot already appear in row 2.")]


def test_location_kinds_are_read_in_french_and_defaults_apply():
    content = csv_bytes("entrepôt;emplacement;type;ordre\nLYS;q-01;Quarantaine;5\nLYS;A-01-01;;\n")
    reader = read(content, ImportKind.LOCATIONS)
    assert [record for _row, record in reader.records] == [
        LocationData("LYS", "Q-01", "quarantine", "Q", 5, "LOC-LYS-Q-01"),
        LocationData("LYS", "A-01-01", "storage", "A", 0, "LOC-LYS-A-01-01"),
    ]


def test_a_missing_quantity_is_an_error_not_a_zero():
    reader = read(csv_bytes("site;location;sku;quantity\nLYS;A-01;S1;\n"), ImportKind.STOCK)
    assert errors(reader) == [(2, "quantity", "This cell is empty: it needs a value.")]
