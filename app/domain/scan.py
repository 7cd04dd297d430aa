"""Decode what a keyboard-wedge scanner typed: AZERTY repair, GTIN check digits, GS1 element strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from biip import BiipException
from biip.checksums import gs1_standard_check_digit
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.symbology import GS1Symbology, SymbologyIdentifier

ScanKind = Literal["gs1", "gtin", "invalid_gtin", "location", "text"]

GTIN_LENGTHS = (8, 12, 13, 14)

# A scanner set up for QWERTY sends key positions, and an AZERTY layout types the unshifted digit row
# as these characters (xkeyboard-config symbols/fr "basic", keys AE01…AE10: & é " ' ( - è _ ç à).
_AZERTY_DIGIT_ROW = "&é\"'(-è_çà"
# The key right of 0 (AE11) is "-" on QWERTY (symbols/us) and ")" on AZERTY: a hyphen in a barcode,
# such as our own "LOC-" labels, arrives as ")". No other key is remapped: see _SAME_ON_BOTH.
_REPAIR = str.maketrans({**dict(zip(_AZERTY_DIGIT_ROW, "1234567890", strict=True)), ")": "-"})
# Keys that type the same character on both layouts; GS is a control code, not a key. Letters a q z w m
# move between the layouts, so a string holding them cannot be repaired with certainty and stays as is.
_SAME_ON_BOTH = frozenset("bcdefghijklnoprstuvxyBCDEFGHIJKLNOPRSTUVXY =\x1d")
_REPAIRABLE = frozenset(_AZERTY_DIGIT_ROW) | {")"} | _SAME_ON_BOTH

# What biip raises besides its own errors on odd input: SymbologyIdentifier.extract indexes and
# int()s blindly (IndexError, ValueError); a scan must never crash the screen.
_BIIP_ERRORS = (BiipException, ValueError, IndexError)
_GS = "\x1d"


@dataclass(frozen=True)
class Gs1Data:
    gtin: str | None  # GTIN-14 of AI 01, else of AI 02 (the contents of a logistic unit)
    lot: str | None  # AI 10
    expiry: date | None  # AI 17
    quantity: int | None  # AI 30, else AI 37
    serial: str | None  # AI 21


@dataclass(frozen=True)
class Scan:
    kind: ScanKind
    # gs1: the HRI "(01)…(10)…"; gtin: GTIN-14; invalid_gtin: the digits as scanned;
    # location: the code after its prefix; text: the cleaned input.
    value: str
    raw: str
    repaired: bool
    gs1: Gs1Data | None = None


def looks_azerty_mangled(raw: str) -> bool:
    """True when raw has no digit, some AZERTY digit-row character, and only characters we can map."""
    return any(char in _AZERTY_DIGIT_ROW for char in raw) and all(char in _REPAIRABLE for char in raw)


def repair_azerty(raw: str) -> str:
    """Undo the AZERTY digit row (and ")" for "-") when raw looks mangled; otherwise return it as is."""
    return raw.translate(_REPAIR) if looks_azerty_mangled(raw) else raw


def validate_gtin(code: str) -> bool:
    """True for a GTIN-8/12/13/14 of ASCII digits whose last digit is the GS1 check digit."""
    if not _gtin_shaped(code):
        return False
    return gs1_standard_check_digit(code[:-1]) == int(code[-1])


def parse_gs1(raw: str) -> Gs1Data | None:
    """Read GS1 element strings (GS1-128, DataMatrix, QR or HRI); None if not GS1 or invalid."""
    message = _parse_message(raw.strip())
    return None if message is None else _gs1_data(message)


def classify_scan(raw: str, location_prefixes: tuple[str, ...] = ("LOC-",)) -> Scan:
    """Say what a scan is: GS1 data, a GTIN (valid or not), a location barcode, or plain text."""
    text = raw.strip()  # scanners end with Enter or Tab; str.strip also drops a stray leading GS
    if looks_azerty_mangled(text):
        repaired = text.translate(_REPAIR)
        kind, value, gs1 = _classify(repaired, location_prefixes)
        # Repair only into something recognisable: French text like "l'été" also passes the looks test.
        if kind != "text" or repaired.isdecimal():
            return Scan(kind, value, raw, True, gs1)
    kind, value, gs1 = _classify(text, location_prefixes)
    return Scan(kind, value, raw, False, gs1)


def _classify(text: str, prefixes: tuple[str, ...]) -> tuple[ScanKind, str, Gs1Data | None]:
    body, gs1_symbology = _strip_symbology(text)
    message = _parse_message(text)
    if message is not None:
        data = _gs1_data(message)
        if data is not None:
            return "gs1", message.as_hri(), data
        bad_gtin = _bad_gtin(message)
        if bad_gtin is not None:
            return "invalid_gtin", bad_gtin, None
    if gs1_symbology is not True and _gtin_shaped(body):
        # A wrong check digit is a misread or a typo: flag it rather than look up a neighbour's item.
        return ("gtin", body.zfill(14), None) if validate_gtin(body) else ("invalid_gtin", body, None)
    for prefix in prefixes:
        if prefix and body.startswith(prefix) and len(body) > len(prefix):
            return "location", body[len(prefix) :], None
    return "text", body, None


def _gtin_shaped(code: str) -> bool:
    # isascii: str.isdecimal alone accepts other scripts' digits, which no barcode carries.
    return len(code) in GTIN_LENGTHS and code.isascii() and code.isdecimal()


def _strip_symbology(text: str) -> tuple[str, bool | None]:
    """Drop a leading "]Xm" symbology identifier; say whether it announces GS1 data (None: no identifier)."""
    if not text.startswith("]"):
        return text, None
    try:
        identifier = SymbologyIdentifier.extract(text)
    except _BIIP_ERRORS:
        return text, None
    return text[len(identifier) :], identifier.gs1_symbology in GS1Symbology.with_gs1_messages()


def _parse_message(text: str) -> GS1Message | None:
    body, gs1_symbology = _strip_symbology(text)
    if gs1_symbology is False or not body.isascii():  # biip's \d patterns would take any script's digits
        return None
    hri = body.startswith("(")
    try:
        message = GS1Message.parse_hri(body) if hri else GS1Message.parse(body)
    except _BIIP_ERRORS:
        return None
    if not message.element_strings:
        return None
    if hri and message.as_hri() != "".join(body.split()):
        return None  # biip's HRI reader skips text it cannot match; a scan must be read whole
    flagged = gs1_symbology or hri or _GS in body
    # Unflagged digits could be a hand-typed SKU like "10ABC" (AI 10, lot "ABC"): accept them only
    # when they open with an SSCC or GTIN, as GS1-128 logistic labels do.
    if not flagged and message.element_strings[0].ai.ai not in ("00", "01", "02"):
        return None
    return message


def _gs1_data(message: GS1Message) -> Gs1Data | None:
    """Pick the fields the warehouse uses; None when a GTIN, expiry or quantity is invalid."""
    by_ai: dict[str, GS1ElementString] = {}
    for element in message.element_strings:
        if by_ai.setdefault(element.ai.ai, element).value != element.value:
            return None  # one AI with two values: neither can be trusted
    gtin = by_ai.get("01") or by_ai.get("02")
    if gtin is not None and gtin.gtin is None:
        return None
    count = by_ai.get("30") or by_ai.get("37")
    if count is not None and not count.value:
        return None  # biip lets AI 30 be empty; GS1 requires at least one digit
    expiry = by_ai.get("17")
    try:
        expiry_date = None if expiry is None else _expiry(expiry.value)
    except ValueError:
        return None
    return Gs1Data(
        gtin=None if gtin is None else gtin.value,
        lot=_value(by_ai, "10"),
        expiry=expiry_date,
        quantity=None if count is None else int(count.value),
        serial=_value(by_ai, "21"),
    )


def _bad_gtin(message: GS1Message) -> str | None:
    for element in message.element_strings:
        if element.ai.ai in ("01", "02") and element.gtin is None:
            return element.value
    return None


def _value(by_ai: dict[str, GS1ElementString], ai: str) -> str | None:
    element = by_ai.get(ai)
    return None if element is None else element.value


def _expiry(yymmdd: str) -> date:
    """Read AI 17; day "00" means the last day of the month (GS1 General Specifications 3.4.2)."""
    # biip chooses the century from today's date (GS1 sliding window), which would put the clock in the
    # domain; expiry dates in stock are in 20YY, so the element's own digits decide.
    year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    if day == 0:
        first = date(year, month, 1)  # refuses month 00 as date() refuses 13
        # 31 days on from the 1st is always next month; calendar is not on the domain's import list.
        return (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    return date(year, month, day)
