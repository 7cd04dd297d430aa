"""The dispatch API's sliced JSON encoding says exactly what msgspec says in one call."""

from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.routes.api_dispatch import Reservation, Shortage, encode_in_slices


@dataclass(frozen=True)
class Answer:
    preview: bool
    summary: dict[str, float]
    shortages: list[Shortage]
    reservations: list[Reservation]
    note: str | None


text = st.text(max_size=8)
shortages = st.lists(st.builds(Shortage, text, text, st.integers()), max_size=12)
reservations = st.lists(
    st.builds(Reservation, text, st.integers(), text, text, st.none() | text, st.integers()), max_size=12
)
answers = st.builds(
    Answer,
    st.booleans(),
    st.dictionaries(text, st.floats(allow_nan=False), max_size=3),
    shortages,
    reservations,
    st.none() | text,
)


@given(answers, st.integers(min_value=1, max_value=5))
def test_slices_join_into_the_same_json(answer, size):
    assert encode_in_slices(answer, size) == msgspec.json.encode(answer)


@pytest.mark.parametrize("size", [1, 3, 10_000])
def test_long_and_empty_lists(size):
    answer = Answer(True, {}, [], [Reservation("O-1", n, "SKU", "A-01", None, n) for n in range(7)], None)
    assert encode_in_slices(answer, size) == msgspec.json.encode(answer)
