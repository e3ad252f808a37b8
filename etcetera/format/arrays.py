"""The C-speed conversions of manifest pieces: little-endian arrays, hex runs, ragged rows."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import TypeVar

_T = TypeVar("_T")


def le(typecode: str, values: Iterable[int]) -> bytes:
    """``values`` as a little-endian array of ``typecode``."""
    arr = array(typecode, values)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def unle(typecode: str, data: memoryview) -> array[int]:
    """The ints of a little-endian array of ``typecode`` (its length a multiple of the width).

    An array, not a list: a piece's number columns stay machine words (10^7 files).
    """
    arr = array(typecode)
    arr.frombytes(data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def flat(rows: Sequence[tuple[int, ...]]) -> list[int]:
    """The rows joined into one list."""
    return [x for row in rows for x in row]


def regroup(flat: Sequence[_T], counts: Iterable[int]) -> list[tuple[_T, ...]]:
    """``flat`` cut into runs of ``counts``; the one shared ``()`` for a count of zero."""
    out: list[tuple[_T, ...]] = []
    at = 0
    for k in counts:
        out.append(tuple(flat[at : at + k]) if k else ())
        at += k
    return out
