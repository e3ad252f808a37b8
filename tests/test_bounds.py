"""Range checks of number columns over their bytes agree with min and max, at the edges too."""

from __future__ import annotations

from array import array

import pytest

from etcetera.errors import ManifestError
from etcetera.format.bounds import check_range, within

MAX_SIZE = 1 << 50


@pytest.mark.parametrize(
    ("code", "hi"), [("Q", MAX_SIZE), ("Q", (1 << 22) + 5), ("H", 0o777), ("I", 255), ("B", 7)]
)
def test_an_unsigned_column_is_within_exactly_when_its_largest_value_is(code: str, hi: int) -> None:
    top = (1 << (8 * array(code).itemsize)) - 1
    for edge in {0, 1, hi // 2, hi - 1, hi, hi + 1, hi * 2, top}:
        if edge > top:
            continue
        col = array(code, [0, 3 % (hi + 1), edge, 1])
        assert within(col, 0, hi) == (edge <= hi), (code, hi, edge)


def test_a_signed_column_is_held_to_both_ends() -> None:
    assert within(array("i", [-1, 0, 4]), -1, 4)
    assert not within(array("i", [-2, 0]), -1, 4)
    assert not within(array("i", [5]), -1, 4)
    assert within([], -1, 0) and not within([1 << 60], 0, MAX_SIZE)


def test_the_first_value_out_of_range_is_named() -> None:
    with pytest.raises(ManifestError, match=r"file size 1125899906842625 is out of range"):
        check_range(array("Q", [1, MAX_SIZE + 1, 1 << 63]), "file size", 0, MAX_SIZE)
