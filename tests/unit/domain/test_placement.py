"""Lots and locations, once quantities are fixed: FEFO or FIFO, never an expired lot, few locations."""

from datetime import date, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from app.domain.allocation import Demand, Supply, allocate_product
from app.domain.allocation.placement import (
    Pick,
    StockPiece,
    _take_from_one_piece,
    _take_in_rotation,
    place_allocation,
    usable_units,
)

TODAY = date(2026, 11, 25)
RECEIVED = date(2026, 10, 1)


def piece(location, units, *, seq=1, lot=None, expiry=None, received=RECEIVED):
    return StockPiece(location, seq, lot, expiry, received, units)


def taken(placement, code="S01"):
    return [(p.location_code, p.lot_code, p.units) for p in placement.picks if p.destination_code == code]


def test_first_expired_first_out_for_expiry_tracked_products():
    pieces = [
        piece("A-01", 20, seq=1, lot="L2", expiry=TODAY + timedelta(days=30)),
        piece("B-07", 20, seq=9, lot="L1", expiry=TODAY + timedelta(days=10)),
    ]
    placement = place_allocation({"S01": 24}, pieces, TODAY, expiry_tracked=True)
    assert taken(placement) == [("A-01", "L2", 4), ("B-07", "L1", 20)]  # L1 emptied first, in pick path order


def test_first_in_first_out_for_other_products():
    pieces = [
        piece("A-01", 10, seq=1, received=date(2026, 11, 2)),
        piece("B-07", 10, seq=9, received=date(2026, 10, 5)),
    ]
    placement = place_allocation({"S01": 6}, pieces, TODAY, expiry_tracked=False)
    assert taken(placement) == [("B-07", None, 6)]


def test_an_expired_lot_never_leaves_and_a_lot_is_good_on_its_expiry_date():
    pieces = [
        piece("A-01", 10, lot="OLD", expiry=TODAY - timedelta(days=1)),
        piece("A-02", 10, seq=2, lot="TODAY", expiry=TODAY),
    ]
    assert usable_units(pieces, TODAY) == 10
    placement = place_allocation({"S01": 15}, pieces, TODAY, expiry_tracked=True)
    assert taken(placement) == [("A-02", "TODAY", 10)]
    assert placement.unplaced == (("S01", 5),)


def test_one_location_that_covers_the_line_is_preferred_to_a_nearer_one_that_does_not():
    pieces = [piece("A-01", 4, seq=1), piece("C-09", 10, seq=30)]
    assert taken(place_allocation({"S01": 8}, pieces, TODAY, expiry_tracked=False)) == [("C-09", None, 8)]


def test_between_covering_locations_the_pick_path_decides():
    pieces = [piece("C-09", 10, seq=30), piece("A-01", 10, seq=3)]
    assert taken(place_allocation({"S01": 8}, pieces, TODAY, expiry_tracked=False)) == [("A-01", None, 8)]


def test_without_a_covering_location_the_fewest_locations_are_used():
    pieces = [piece("A-01", 3, seq=1), piece("B-01", 6, seq=2), piece("C-01", 5, seq=3)]
    placement = place_allocation({"S01": 10}, pieces, TODAY, expiry_tracked=False)
    assert taken(placement) == [("B-01", None, 6), ("C-01", None, 4)]


def test_lots_of_the_same_expiry_count_together_for_the_location_choice():
    expiry = TODAY + timedelta(days=20)
    pieces = [
        piece("A-01", 5, seq=1, lot="L1", expiry=expiry),
        piece("B-01", 4, seq=2, lot="L1", expiry=expiry),
        piece("B-01", 4, seq=2, lot="L2", expiry=expiry),
    ]
    placement = place_allocation({"S01": 8}, pieces, TODAY, expiry_tracked=True)
    assert taken(placement) == [("B-01", "L1", 4), ("B-01", "L2", 4)]


def test_the_larger_line_chooses_first():
    pieces = [piece("A-01", 8, seq=1), piece("B-01", 3, seq=2), piece("C-01", 3, seq=3)]
    placement = place_allocation({"S01": 3, "S02": 8}, pieces, TODAY, expiry_tracked=False)
    assert taken(placement, "S02") == [("A-01", None, 8)]
    assert taken(placement, "S01") == [("B-01", None, 3)]
    assert placement.picks[0] == Pick("S02", "A-01", 1, None, None, 8)


# Invariants, for every input

LOCATIONS = ["A-01", "A-02", "B-01", "B-02", "C-01"]


@st.composite
def stock(draw):
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(LOCATIONS), st.sampled_from(["L1", "L2", "L3"])),
            min_size=0,
            max_size=10,
            unique=True,
        )
    )
    return [
        StockPiece(
            location,
            LOCATIONS.index(location),
            lot,
            draw(st.none() | st.dates(TODAY - timedelta(days=5), TODAY + timedelta(days=5))),
            draw(st.dates(date(2026, 11, 1), date(2026, 11, 5))),
            draw(st.integers(0, 30)),
        )
        for location, lot in keys
    ]


requests = st.dictionaries(st.sampled_from(["S01", "S02", "S03", "S04"]), st.integers(0, 60), max_size=4)


def left_after(placement, pieces):
    left = {(p.location_code, p.lot_code): p.available_units for p in pieces}
    for pick in placement.picks:
        left[(pick.location_code, pick.lot_code)] -= pick.units
    return left


def rotation(piece, expiry_tracked):
    return (piece.expiry is None, piece.expiry or date.max) if expiry_tracked else piece.received_at


@given(stock(), requests, st.booleans())
def test_no_piece_gives_more_than_it_holds_and_no_expired_lot_leaves(pieces, wanted, expiry_tracked):
    placement = place_allocation(wanted, pieces, TODAY, expiry_tracked=expiry_tracked)
    assert all(units >= 0 for units in left_after(placement, pieces).values())
    expired = {(p.location_code, p.lot_code) for p in pieces if p.expiry is not None and p.expiry < TODAY}
    assert not any((pick.location_code, pick.lot_code) in expired for pick in placement.picks)
    assert all(pick.units > 0 for pick in placement.picks)


@given(stock(), requests, st.booleans())
def test_every_unit_is_placed_or_reported(pieces, wanted, expiry_tracked):
    placement = place_allocation(wanted, pieces, TODAY, expiry_tracked=expiry_tracked)
    placed = placement.units_by_destination()
    unplaced = dict(placement.unplaced)
    for code, units in wanted.items():
        assert placed.get(code, 0) + unplaced.get(code, 0) == units
    if sum(wanted.values()) <= usable_units(pieces, TODAY):
        assert not placement.unplaced


@given(stock(), requests, st.booleans())
def test_stock_leaves_in_rotation_order(pieces, wanted, expiry_tracked):
    placement = place_allocation(wanted, pieces, TODAY, expiry_tracked=expiry_tracked)
    left = left_after(placement, pieces)
    usable = [p for p in pieces if not (p.expiry is not None and p.expiry < TODAY)]
    used = {(pick.location_code, pick.lot_code) for pick in placement.picks}
    taken_ranks = [rotation(p, expiry_tracked) for p in usable if (p.location_code, p.lot_code) in used]
    kept_ranks = [rotation(p, expiry_tracked) for p in usable if left[(p.location_code, p.lot_code)] > 0]
    if taken_ranks and kept_ranks:
        assert max(taken_ranks) <= min(kept_ranks)


@given(stock(), requests, st.booleans(), st.randoms(use_true_random=False))
def test_the_order_of_pieces_and_lines_does_not_matter(pieces, wanted, expiry_tracked, rng):
    shuffled = list(pieces)
    rng.shuffle(shuffled)
    reordered = dict(sorted(wanted.items(), reverse=True))
    assert place_allocation(reordered, shuffled, TODAY, expiry_tracked=expiry_tracked) == place_allocation(
        wanted, pieces, TODAY, expiry_tracked=expiry_tracked
    )


@given(stock(), st.integers(1, 6), st.lists(st.integers(0, 40), min_size=1, max_size=4), st.booleans())
def test_an_allocation_from_usable_stock_is_always_placed(pieces, pack_size, needs, expiry_tracked):
    supply = Supply("SKU", pack_size, usable_units(pieces, TODAY), allow_eaches=True)
    demands = [Demand(f"S0{i}", 1 + i % 2, need) for i, need in enumerate(needs)]
    allocation = allocate_product(supply, demands)
    placement = place_allocation(
        allocation.units_by_destination(), pieces, TODAY, expiry_tracked=expiry_tracked
    )
    assert not placement.unplaced
    assert placement.units_by_destination() == {
        c: u for c, u in allocation.units_by_destination().items() if u
    }
    assert all(units >= 0 for units in left_after(placement, pieces).values())


@given(stock(), requests, st.booleans())
def test_the_shortcut_for_a_single_piece_follows_the_general_rules(pieces, wanted, expiry_tracked):
    usable = [i for i, p in enumerate(pieces) if p.available_units > 0 and not p.is_expired(TODAY)]
    assume(usable)
    shortcut = _take_from_one_piece(wanted, pieces, usable[0])
    assert shortcut == _take_in_rotation(wanted, pieces, usable[:1], expiry_tracked)
