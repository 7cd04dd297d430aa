"""Lots and locations, chosen once quantities are fixed (PRODUCT.md, step 4).

Stock leaves in rotation order: first expired, first out for expiry-tracked products, else first in,
first out; an expired lot never leaves. Stock of equal rank in that order (same expiry, or same receipt
date) forms one class, and within a class the line prefers one location that covers it, then the fewest
locations, then the pick path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    usable = [p for p in pieces if p.available_units > 0 and not p.is_expired(today)]
    if len(usable) == 1:  # a third of the products of a large run: nothing to sort or to choose
        return _place_on_one_piece(units_by_destination, usable[0])
    return _place_in_rotation(units_by_destination, usable, expiry_tracked)


def _place_in_rotation(
    units_by_destination: Mapping[str, int], usable: list[StockPiece], expiry_tracked: bool
) -> Placement:
    """The general rules over the usable pieces: rotation classes, covering location, fewest, pick path."""
    rotation = _first_expired_first_out if expiry_tracked else _first_in_first_out
    usable.sort(key=lambda p: (*rotation(p), p.pick_seq, p.location_code, p.lot_code or "", *_rest(p)))
    classes = [
        _by_location(usable, list(group))
        for _, group in groupby(range(len(usable)), key=lambda i: rotation(usable[i]))
    ]
    left = [piece.available_units for piece in usable]
    picks: list[Pick] = []
    unplaced: list[tuple[str, int]] = []
    for code, units in sorted(units_by_destination.items(), key=lambda item: (-item[1], item[0])):
        taken: list[Pick] = []
        for places in classes:
            if units == 0:
                break
            units -= _take_from_class(code, units, places, usable, left, taken)
        if len(taken) > 1:
            taken.sort(key=lambda pick: (pick.pick_seq, pick.location_code, pick.lot_code or ""))
        picks.extend(taken)
        if units:
            unplaced.append((code, units))
    return Placement(tuple(picks), tuple(sorted(unplaced)))


def _place_on_one_piece(units_by_destination: Mapping[str, int], piece: StockPiece) -> Placement:
    """The common case (one lot, or one location): the same rules with nothing to choose, each line
    taking what is left of the piece in turn (tests check it equals `_place_in_rotation`)."""
    left = piece.available_units
    picks: list[Pick] = []
    unplaced: list[tuple[str, int]] = []
    for code, units in sorted(units_by_destination.items(), key=lambda item: (-item[1], item[0])):
        take = min(left, units)
        if take:
            left -= take
            picks.append(Pick(code, piece.location_code, piece.pick_seq, piece.lot_code, piece.expiry, take))
        if units - take:
            unplaced.append((code, units - take))
    return Placement(tuple(picks), tuple(sorted(unplaced)))


def _first_expired_first_out(piece: StockPiece) -> tuple[bool, date]:
    """Earliest expiry first; a piece without an expiry date comes last."""
    return (piece.expiry is None, piece.expiry or date.max)


def _rest(piece: StockPiece) -> tuple[date, date, int]:
    """The remaining fields, so that the order of pieces never depends on the order they came in."""
    return (piece.received_at, piece.expiry or date.max, piece.available_units)


def _first_in_first_out(piece: StockPiece) -> tuple[bool, date]:
    return (False, piece.received_at)


# One location of a rotation class: its code, its place on the pick path, and its pieces (indexes into
# the usable pieces) in the order they leave: oldest receipt first, then lot code.
_Place = tuple[str, int, list[int]]


def _by_location(usable: list[StockPiece], members: list[int]) -> list[_Place]:
    """A class's pieces grouped by location, built once per product (not once per destination)."""
    grouped: dict[str, list[int]] = {}
    for i in members:
        grouped.setdefault(usable[i].location_code, []).append(i)
    return [
        (
            code,
            usable[held[0]].pick_seq,
            sorted(held, key=lambda i: (usable[i].received_at, usable[i].lot_code or "")),
        )
        for code, held in grouped.items()
    ]


def _take_from_class(
    code: str, units: int, places: list[_Place], usable: list[StockPiece], left: list[int], taken: list[Pick]
) -> int:
    """Take up to `units` from one rotation class: one covering location, else the fewest (largest
    first), ties by pick path. Returns the units taken."""
    if len(places) == 1 and len(places[0][2]) == 1:  # the common case (a lot, or a single location)
        i = places[0][2][0]
        take = min(left[i], units)
        if take:
            left[i] -= take
            piece = usable[i]
            taken.append(Pick(code, piece.location_code, piece.pick_seq, piece.lot_code, piece.expiry, take))
        return take
    stocked = [(total, place) for place in places if (total := sum(left[i] for i in place[2]))]
    covering = [place for total, place in stocked if total >= units]
    if covering:
        chosen = [min(covering, key=lambda place: (place[1], place[0]))]
    else:
        chosen = [place for _, place in sorted(stocked, key=lambda tp: (-tp[0], tp[1][1], tp[1][0]))]
    wanted = units
    for _code, _seq, held in chosen:
        for i in held:
            take = min(left[i], wanted)
            if take:
                left[i] -= take
                wanted -= take
                piece = usable[i]
                taken.append(
                    Pick(code, piece.location_code, piece.pick_seq, piece.lot_code, piece.expiry, take)
                )
            if wanted == 0:
                return units
    return units - wanted
