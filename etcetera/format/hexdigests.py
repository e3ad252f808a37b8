"""SHA-256 digests held as raw bytes, read as hex strings (the file table's digest column)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import overload

DIGEST = 32  # bytes of one SHA-256 digest


def split_hex(data: bytes | memoryview, width: int = DIGEST) -> list[str]:
    """Hex strings of consecutive ``width``-byte digests (one C-speed pass)."""
    text = data.hex()
    step = 2 * width
    cuts = map(slice, range(0, len(text), step), itertools.count(step, step))
    return list(map(text.__getitem__, cuts))


class HexDigests(Sequence[str]):
    """SHA-256 digests held as raw bytes, read as hex strings (made when asked for)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) % DIGEST:
            raise ValueError("digest bytes are not a whole number of digests")
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw) // DIGEST

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return split_hex(self.raw)[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError("digest index out of range")
        i %= n
        return self.raw[DIGEST * i : DIGEST * (i + 1)].hex()

    def __iter__(self) -> Iterator[str]:
        return iter(split_hex(self.raw))


def raw_digests(digests: Sequence[str]) -> bytes:
    """The raw bytes of hex digests (checked hex: ``bytes.fromhex`` refuses the rest)."""
    if isinstance(digests, HexDigests):
        return digests.raw
    return bytes.fromhex("".join(digests))
