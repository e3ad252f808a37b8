"""The layout of a framed (``zstd``) object: frames, their index, and ranges in them.

A framed object is a run of independent zstd frames, each inflating to ``frame_size``
bytes but the last (1 to ``frame_size``), followed by a seek table in the zstd
*seekable format* (a skippable frame, so that ``zstd -d`` inflates the whole object).
The manifest piece lists each frame's stored length, so a reader of a logical range
knows the stored range to fetch without reading the seek table; the seek table makes
the object self-describing (a push that finds the object already stored reads it).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import IntegrityError

MIN_FRAME = 1 << 12  # logical bytes of a frame, at least ...
MAX_FRAME = 1 << 26  # ... and at most: what one frame may cost in memory to inflate
SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
_ENTRY = struct.Struct("<II")  # compressed size, decompressed size
_FOOTER = struct.Struct("<IBI")  # frames, descriptor, seekable magic
_SKIP = struct.Struct("<II")  # skippable magic, content length


def seek_table_size(frames: int) -> int:
    """Bytes of the seek table that ends an object of ``frames`` frames."""
    return _SKIP.size + _ENTRY.size * frames + _FOOTER.size


def frame_bound(frame_size: int) -> int:
    """The most a frame of ``frame_size`` logical bytes may take stored (zstd's worst case)."""
    return frame_size + (frame_size >> 7) + 1024


def frame_count(logical: int, frame_size: int) -> int:
    """Frames of an object of ``logical`` bytes."""
    return -(-logical // frame_size)


def stored_size(frames: Sequence[int]) -> int:
    """Stored bytes of an object whose frames take ``frames`` bytes each."""
    return sum(frames) + seek_table_size(len(frames))


def seek_table(frames: Sequence[int], logical: int, frame_size: int) -> bytes:
    """The seek table of an object (zstd seekable format, no checksums)."""
    sizes = [frame_size] * len(frames)
    if sizes:
        sizes[-1] = logical - frame_size * (len(frames) - 1)
    entries = b"".join(_ENTRY.pack(c, d) for c, d in zip(frames, sizes, strict=True))
    footer = _FOOTER.pack(len(frames), 0, SEEKABLE_MAGIC)
    return _SKIP.pack(SKIPPABLE_MAGIC, len(entries) + len(footer)) + entries + footer


def read_seek_table(tail: bytes, what: str) -> tuple[tuple[int, ...], int, int]:
    """``(frame lengths, logical size, frame size)`` from the last bytes of an object.

    ``tail`` must hold the whole seek table (its size follows from the footer's
    frame count: :func:`seek_table_size`).

    Raises:
        IntegrityError: not a seek table etcetera writes (a fixed frame size but the last).
    """
    bad = IntegrityError(f"{what} has no valid seek table")
    if len(tail) < _FOOTER.size:
        raise bad
    count, descriptor, magic = _FOOTER.unpack_from(tail, len(tail) - _FOOTER.size)
    size = seek_table_size(count)
    if magic != SEEKABLE_MAGIC or descriptor != 0 or count < 1 or len(tail) < size:
        raise bad
    skip, length = _SKIP.unpack_from(tail, len(tail) - size)
    if skip != SKIPPABLE_MAGIC or length != size - _SKIP.size:
        raise bad
    pairs = [_ENTRY.unpack_from(tail, len(tail) - size + _SKIP.size + 8 * i) for i in range(count)]
    frames = tuple(c for c, _ in pairs)
    sizes = [d for _, d in pairs]
    frame_size = sizes[0]
    if not (
        MIN_FRAME <= frame_size <= MAX_FRAME
        and all(s == frame_size for s in sizes[:-1])
        and 1 <= sizes[-1] <= frame_size
        and all(1 <= c <= frame_bound(frame_size) for c in frames)
    ):
        raise bad
    return frames, sum(sizes), frame_size


@dataclass(frozen=True, slots=True)
class FrameTable:
    """Where each frame of a framed object lies, stored and inflated.

    Attributes:
        frame_size: logical bytes of each frame but the last.
        logical: logical bytes of the object.
        starts: stored offset of each frame, and the end of the last (``len + 1`` items).
    """

    frame_size: int
    logical: int
    starts: tuple[int, ...]

    @classmethod
    def of(cls, frames: Sequence[int], logical: int, frame_size: int) -> FrameTable:
        """The table of an object whose frames are ``frames`` stored bytes long."""
        return cls(frame_size, logical, (0, *itertools.accumulate(frames)))

    def span(self, offset: int, length: int) -> tuple[int, int, int, int]:
        """Frames holding logical ``[offset, offset + length)``.

        Returns ``(first frame, frames, stored start, stored length)``; ``length`` must be
        positive and the range inside the object.
        """
        first = offset // self.frame_size
        last = (offset + length - 1) // self.frame_size
        start, end = self.starts[first], self.starts[last + 1]
        return first, last - first + 1, start, end - start

    def inflated(self, frame: int) -> int:
        """Logical bytes of frame ``frame``."""
        return min(self.frame_size, self.logical - frame * self.frame_size)
