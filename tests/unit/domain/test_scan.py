from datetime import date

import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import given
from hypothesis import strategies as st

from app.domain.scan import (
    Gs1Data,
    classify_scan,
    looks_azerty_mangled,
    parse_gs1,
    repair_azerty,
    validate_gtin,
)

GS = "\x1d"
EAN = "3760123456784"
GTIN14 = "0" + EAN
DIGITS = "0123456789"
_MANGLE = str.maketrans(DIGITS + "-", "à&é\"'(-è_ç)")


def mangle(text: str) -> str:
    """Type text through a QWERTY-configured scanner into an AZERTY layout."""
    return text.translate(_MANGLE)


def with_check_digit(payload: str) -> str:
    return payload + str(gs1_standard_check_digit(payload))


# AZERTY repair


def test_an_azerty_mangled_ean_is_repaired():
    assert mangle(EAN) == "\"è-à&é\"'(-è_'"
    scan = classify_scan("\"è-à&é\"'(-è_'\r\n")
    assert (scan.kind, scan.value, scan.repaired) == ("gtin", GTIN14, True)


def test_a_location_code_is_never_repaired():
    assert not looks_azerty_mangled("A-01-03")
    assert repair_azerty("A-01-03") == "A-01-03"
    scan = classify_scan("A-01-03")
    assert (scan.kind, scan.value, scan.repaired) == ("text", "A-01-03", False)


def test_a_mangled_location_barcode_is_repaired_hyphens_included():
    scan = classify_scan(mangle("LOC-B-01-03"))
    assert (scan.kind, scan.value, scan.repaired) == ("location", "B-01-03", True)


def test_letters_that_move_on_azerty_block_the_repair():
    # "A" comes out as "Q" on AZERTY: repairing only the digits would invent location Q-01-03.
    assert not looks_azerty_mangled('LOC)Q)à&)à"')
    assert classify_scan('LOC)Q)à&)à"').kind == "text"


@pytest.mark.parametrize("typed", ["l'été", "Entrée", "(nord)", "crème", "Rue d'Arc"])
def test_french_text_is_not_turned_into_a_code(typed):
    scan = classify_scan(typed)
    assert (scan.kind, scan.value, scan.repaired) == ("text", typed, False)


def test_a_mangled_gs1_128_is_repaired():
    scan = classify_scan(mangle(f"01{GTIN14}1726123110") + "LOT'é")
    assert scan.kind == "gs1" and scan.repaired
    assert scan.gs1 == Gs1Data(GTIN14, "LOT42", date(2026, 12, 31), None, None)


# GTINs


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("96385074", True),  # GTIN-8
        ("036000291452", True),  # GTIN-12
        (EAN, True),
        (GTIN14, True),
        ("3760123456785", False),
        ("376012345678", False),  # 12 digits, wrong check digit
        ("37601234567", False),  # no such length
        ("", False),
        ("376012345678x", False),
        ("٣٧٦٠١٢٣٤٥٦٧٨٤", False),  # Arabic-Indic digits are decimal to Python, not to a scanner
    ],
)
def test_gtin_check_digits(code, valid):
    assert validate_gtin(code) is valid


def test_a_gtin_with_a_wrong_check_digit_is_flagged():
    scan = classify_scan("3760123456785")
    assert (scan.kind, scan.value) == ("invalid_gtin", "3760123456785")


@pytest.mark.parametrize(
    ("code", "gtin14"), [("96385074", "00000096385074"), ("036000291452", "00036000291452")]
)
def test_short_gtins_are_normalised_to_14_digits(code, gtin14):
    assert classify_scan(code).value == gtin14


def test_an_ean_with_its_symbology_identifier_is_a_gtin():
    assert (classify_scan("]E0" + EAN).kind, classify_scan("]E0" + EAN).value) == ("gtin", GTIN14)


# GS1 element strings


def test_gs1_datamatrix_with_group_separators_gives_gtin_lot_and_expiry():
    data = parse_gs1(f"]d201{GTIN14}10LOT42{GS}17261231{GS}21SN-7\t")
    assert data == Gs1Data(GTIN14, "LOT42", date(2026, 12, 31), None, "SN-7")


@pytest.mark.parametrize("symbology", ["]C1", "]d2", "]Q3", ""])
def test_gs1_symbology_identifiers_are_understood(symbology):
    data = parse_gs1(f"{symbology}01{GTIN14}3712{GS}10LOT42")
    assert data == Gs1Data(GTIN14, "LOT42", None, 12, None)


def test_the_human_readable_form_reads_like_the_barcode():
    data = parse_gs1(f"(01){GTIN14}(17)261231(10)LOT42")
    assert data == Gs1Data(GTIN14, "LOT42", date(2026, 12, 31), None, None)


def test_an_unflagged_gs1_128_that_opens_with_a_gtin_is_read():
    scan = classify_scan(f"01{GTIN14}1726123110LOT42")
    assert scan.kind == "gs1"
    assert scan.value == f"(01){GTIN14}(17)261231(10)LOT42"


@pytest.mark.parametrize(("yymmdd", "expiry"), [("260200", date(2026, 2, 28)), ("280200", date(2028, 2, 29))])
def test_day_00_expiry_means_end_of_month(yymmdd, expiry):
    data = parse_gs1(f"]C101{GTIN14}17{yymmdd}")
    assert data is not None and data.expiry == expiry


def test_the_quantity_comes_from_ai_30_or_37():
    assert parse_gs1(f"]C101{GTIN14}3025").quantity == 25
    assert parse_gs1(f"]C102{GTIN14}3740").quantity == 40


def test_a_gs1_string_with_a_wrong_gtin_check_digit_is_flagged():
    assert parse_gs1(f"]C10103760123456785{GS}10LOT42") is None
    scan = classify_scan(f"]C10103760123456785{GS}10LOT42")
    assert (scan.kind, scan.value) == ("invalid_gtin", "03760123456785")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "A-01-03",
        "LOT42",
        EAN,
        "10ABC",  # a SKU typed by hand, not AI 10
        f"]E0{EAN}",  # EAN-13 symbology carries no element strings
        f"]C101{GTIN14}17261332",  # month 13
        f"]C101{GTIN14}17260000",  # month 00
        f"]C101{GTIN14}30",  # AI 30 without digits
        f"]C101{GTIN14}10A{GS}10B",  # one lot, two values
        f"(01){GTIN14}junk(10)LOT42",
        f"(01){GTIN14}(17)261231(",
        "]",
        "]Yx",
    ],
)
def test_strings_that_are_not_gs1_give_none(raw):
    assert parse_gs1(raw) is None


# Locations and text


def test_a_location_barcode_gives_the_location_code():
    scan = classify_scan("LOC-A-01-03\r\n")
    assert (scan.kind, scan.value, scan.raw, scan.repaired) == (
        "location",
        "A-01-03",
        "LOC-A-01-03\r\n",
        False,
    )
    assert classify_scan("EMP/A-01-03", ("EMP/", "LOC-")).value == "A-01-03"


def test_anything_else_is_text_without_surrounding_whitespace():
    assert (classify_scan("  SKU-123\t").kind, classify_scan("  SKU-123\t").value) == ("text", "SKU-123")
    assert classify_scan("LOC-").kind == "text"


# Properties


@given(st.text(alphabet=DIGITS))
def test_repairing_a_mangled_digit_string_gives_the_digits_back(digits):
    assert repair_azerty(mangle(digits)) == digits


@given(st.text().filter(lambda text: any(char.isascii() and char.isdigit() for char in text)))
def test_a_string_holding_a_digit_is_never_repaired(text):
    assert repair_azerty(text) == text


@given(st.text(alphabet=DIGITS, min_size=12, max_size=12), st.integers(min_value=1, max_value=9))
def test_a_gtin_13_is_recognised_and_a_wrong_check_digit_is_flagged(payload, shift):
    ean = with_check_digit(payload)
    scan = classify_scan(ean)
    assert (scan.kind, scan.value) == ("gtin", "0" + ean)
    wrong = payload + str((int(ean[-1]) + shift) % 10)
    assert classify_scan(wrong).kind == "invalid_gtin"


LOTS = st.text(
    alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"),
    min_size=1,
    max_size=20,
)


@given(
    payload=st.text(alphabet=DIGITS, min_size=13, max_size=13),
    lot=LOTS,
    expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    quantity=st.integers(min_value=0, max_value=99_999_999),
    order=st.permutations(range(4)),
    symbology=st.sampled_from(["", "]C1", "]d2", "]Q3"]),
)
def test_gs1_strings_give_back_exactly_what_they_carry_in_any_order(
    payload, lot, expiry, quantity, order, symbology
):
    gtin = with_check_digit(payload)
    elements = [("01", gtin, False), ("10", lot, True), ("17", expiry.strftime("%y%m%d"), False)]
    elements.append(("30", str(quantity), True))
    ordered = [elements[i] for i in order]
    # Variable-length fields end with GS, except the last one, which ends with the scan.
    barcode = "".join(ai + value + (GS if variable else "") for ai, value, variable in ordered[:-1])
    barcode += ordered[-1][0] + ordered[-1][1]
    expected = Gs1Data(gtin, lot, expiry, quantity, None)
    assert parse_gs1(symbology + barcode) == expected
    assert parse_gs1("".join(f"({ai}){value}" for ai, value, _ in ordered)) == expected


@given(st.text())
def test_classifying_never_raises(text):
    scan = classify_scan(text)
    assert scan.raw == text
    assert (scan.gs1 is not None) == (scan.kind == "gs1")


@given(st.text(alphabet=st.sampled_from(DIGITS + "()]" + GS + "CdQE0123&é\"'(-è_çà LOC-"), max_size=40))
def test_classifying_scanner_like_noise_never_raises(text):
    classify_scan(text)
    parse_gs1(text)
