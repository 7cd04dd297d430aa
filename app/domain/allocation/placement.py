"""Lots and locations, chosen once quantities are fixed (PRODUCT.md, step 4).

Stock leaves in rotation order: first expired, first out for expiry-tracked products, else first in,
first out; an expired lot never leaves. Stock of equal rank in that order (same expiry, or same receipt
date) forms one class, and within a class the line prefers one location that covers it, then the fewest
locations, then the pick path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby


@dataclass(frozen=True, slots=True)
class StockPiece:
    """Available stock of the product at one location, in one lot."""

    location_code: str
    pick_seq: int  # place of the location on the pick path
    lot_code: str | None
    expiry: date | None
    received_at: date  # for first in, first out
    available_units: int

    def is_expired(self, today: date) -> bool:
        """A lot is good up to and including its expiry date."""
        return self.expiry is not None and self.expiry < today


@dataclass(frozen=True, slots=True)
class Pick:
    """Take `units` from one location and lot for one destination."""

    destination_code: str
    location_code: str
    pick_seq: int
    lot_code: str | None
    expiry: date | None
    units: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Picks per destination (in pick path order), and units that no stock piece could give."""

    picks: tuple[Pick, ...]
    unplaced: tuple[tuple[str, int], ...] = ()

    def units_by_destination(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for pick in self.picks:
            totals[pick.destination_code] = totals.get(pick.destination_code, 0) + pick.units
        return totals


# What one destination takes: (index of a piece in the pieces given, units), in pick path order.
Takes = list[tuple[int, int]]


def usable_units(pieces: Iterable[StockPiece], today: date) -> int:
    """Units a run may allocate: every piece that has not expired (what `Supply.available_units` is)."""
    return sum(piece.available_units for piece in pieces if not piece.is_expired(today))


def place_allocation(
    units_by_destination: Mapping[str, int],
    pieces: Iterable[StockPiece],
    today: date,
    *,
    expiry_tracked: bool,
) -> Placement:
    """Choose lots and locations for every destination's units, never taking more than a piece holds.

    Larger lines choose first (they most need a location that covers them), ties by destination code.
    """
    listed = list(pieces)
    taken, unplaced = take_pieces(units_by_destination, listed, today, expiry_tracked=expiry_tracked)
    picks = []
    for code, takes in taken.items():
        for i, units in takes:
            piece = listed[i]
            picks.append(Pick(code, piece.location_code, piece.pick_seq, piece.lot_code, piece.expiry, units))
    return Placement(tuple(picks), unplaced)


def take_pieces(
    units_by_destination: Mapping[str, int],
    pieces: Sequence[StockPiece],
    today: date,
    *,
    expiry_tracked: bool,
) -> tuple[dict[str, Takes], tuple[tuple[str, int], ...]]:
    """`place_allocation` by index into `pieces`, for a caller that holds more about each piece than a
    `StockPiece` says (a dispatch plan's stock rows): what each destination takes, destinations in the
    order they choose and only those that take something, and the units that no piece could give."""
    usable = [
        i for i, piece in enumerate(pieces) if piece.available_units > 0 and not piece.is_expired(today)
    ]
    if len(usable) == 1:  # a third of the products of a large run: nothing to sort or to choose
        return _take_from_one_piece(units_by_destination, pieces, usable[0])
    return _take_in_rotation(units_by_destination, pieces, usable, expiry_tracked)


def _take_in_rotation(
    units_by_destination: Mapping[str, int],
    pieces: Sequence[StockPiece],
    usable: list[int],
    expiry_tracked: bool,
) -> tuple[dict[str, Takes], tuple[tuple[str, int], ...]]:
    """The general rules over the usable pieces: rotation classes, covering location, fewest, pick path."""
    rotation = _first_expired_first_out if expiry_tracked else _first_in_first_out
    usable.sort(key=lambda i: (*rotation(pieces[i]), *_path(pieces[i]), *_rest(pieces[i])))
    classes = [
        _by_location(pieces, list(group)) for _, group in groupby(usable, key=lambda i: rotation(pieces[i]))
    ]
    left = [piece.available_units for piece in pieces]
    taken: dict[str, Takes] = {}
    unplaced: list[tuple[str, int]] = []
    for code, units in sorted(units_by_destination.items(), key=lambda item: (-item[1], item[0])):
        takes: Takes = []
        for places in classes:
            if units == 0:
                break
            units -= _take_from_class(units, places, left, takes)
        if takes:
            if len(takes) > 1:
                takes.sort(key=lambda take: _path(pieces[take[0]]))
            taken[code] = takes
        if units:
            unplaced.append((code, units))
    return taken, tuple(sorted(unplaced))


def _take_from_one_piece(
    units_by_destination: Mapping[str, int], pieces: Sequence[StockPiece], i: int
) -> tuple[dict[str, Takes], tuple[tuple[str, int], ...]]:
    """The common case (one lot, or one location): the same rules with nothing to choose, each line
    taking what is left of the piece in turn (tests check it equals `_take_in_rotation`)."""
    left = pieces[i].available_units
    taken: dict[str, Takes] = {}
    unplaced: list[tuple[str, int]] = []
    for code, units in sorted(units_by_destination.items(), key=lambda item: (-item[1], item[0])):
        take = min(left, units)
        if take:
            left -= take
            taken[code] = [(i, take)]
        if units - take:
            unplaced.append((code, units - take))
    return taken, tuple(sorted(unplaced))


def _first_expired_first_out(piece: StockPiece) -> tuple[bool, date]:
    """Earliest expiry first; a piece without an expiry date comes last."""
    return (piece.expiry is None, piece.expiry or date.max)


def _first_in_first_out(piece: StockPiece) -> tuple[bool, date]:
    return (False, piece.received_at)


def _path(piece: StockPiece) -> tuple[int, str, str]:
    """Pick path order."""
    return (piece.pick_seq, piece.location_code, piece.lot_code or "")


def _rest(piece: StockPiece) -> tuple[date, date, int]:
    """The remaining fields, so that the order of pieces never depends on the order they came in."""
    return (piece.received_at, piece.expiry or date.max, piece.available_units)


def _by_location(pieces: Sequence[StockPiece], members: list[int]) -> list[list[int]]:
    """A rotation class's pieces grouped by location, built once per product (not once per destination).

    Each location's pieces (indexes into `pieces`) are in the order they leave: oldest receipt first,
    then lot code. The locations are in pick path order, as the members are: a location comes where its
    first piece does.
    """
    grouped: dict[str, list[int]] = {}
    for i in members:
        grouped.setdefault(pieces[i].location_code, []).append(i)
    places = list(grouped.values())
    for held in places:
        if len(held) > 1:  # most locations hold one piece of the class
            held.sort(key=lambda i: (pieces[i].received_at, pieces[i].lot_code or ""))
    return places


def _take_from_class(units: int, places: list[list[int]], left: list[int], takes: Takes) -> int:
    """Take up to `units` from one rotation class (its locations in pick path order): one covering
    location, else the fewest (largest first), ties by pick path. Returns the units taken."""
    if len(places) == 1 and len(places[0]) == 1:  # the common case (a lot, or a single location)
        i = places[0][0]
        take = min(left[i], units)
        if take:
            left[i] -= take
            takes.append((i, take))
        return take
    short: list[tuple[list[int], int]] = []  # locations that do not cover the line, and what they hold
    for held in places:  # in pick path order: the first location that covers the line is the one
        total = sum(left[i] for i in held)
        if total >= units:
            chosen = [held]
            break
        short.append((held, total))
    else:  # none covers it: the largest first, by a stable sort (equal totals stay in pick path order)
        chosen = [held for held, _ in sorted(short, key=lambda place: -place[1])]
    wanted = units
    for held in chosen:
        for i in held:
            take = min(left[i], wanted)
            if take:
                left[i] -= take
                wanted -= take
                takes.append((i, take))
            if wanted == 0:
                return units
    return units - wanted
