"""Shipment and backorder numbers, and the ZPL of parcel labels."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.shipping import (
    NUMBER_LIMIT,
    ParcelLabel,
    backorder_number,
    shipment_number,
    zpl_field,
    zpl_label,
    zpl_labels,
)


def test_shipments_are_numbered_per_day():
    assert shipment_number(date(2026, 11, 25), 1) == "EXP-20261125-0001"
    assert shipment_number(date(2026, 11, 25), 123) == "EXP-20261125-0123"
    with pytest.raises(ValueError, match="from 1"):
        shipment_number(date(2026, 11, 25), 0)


def test_a_backorder_takes_the_first_free_number_from_the_root():
    assert backorder_number("CMD-7", is_backorder=False, taken=set()) == "CMD-7-R1"
    assert backorder_number("CMD-7", is_backorder=False, taken={"CMD-7-R1"}) == "CMD-7-R2"
    assert backorder_number("CMD-7-R1", is_backorder=True, taken={"CMD-7-R1"}) == "CMD-7-R2"
    # An order whose own number happens to end like a backorder's is not one.
    assert backorder_number("LOT-R2", is_backorder=False, taken=set()) == "LOT-R2-R1"


@given(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=NUMBER_LIMIT))
def test_a_backorder_number_always_fits_the_column_and_is_new(number):
    taken = {number}
    found = backorder_number(number, is_backorder=False, taken=taken)
    assert len(found) <= NUMBER_LIMIT and found not in taken


def test_zpl_field_data_cannot_inject_commands():
    assert zpl_field("Café ^XZ ~JA _x") == "Café _5EXZ _7EJA _5Fx"
    assert "\n" not in zpl_field("two\nlines")


def test_one_label_per_parcel_with_the_shipment_as_code_128():
    labels = [
        ParcelLabel("EXP-20261125-0001", "Lyon (LYS)", "MAG-A", "Magasin A", f"Colis {n}/2") for n in (1, 2)
    ]
    zpl = zpl_labels(labels)
    assert zpl.count("^XA") == 2 and zpl.count("^XZ") == 2
    first = zpl_label(labels[0])
    assert "^BCN" in first and "^FDEXP-20261125-0001^FS" in first
    assert "Colis 1/2" in first and "MAG-A" in first and "Lyon (LYS)" in first
    assert "^CI28" in first  # UTF-8 field data
