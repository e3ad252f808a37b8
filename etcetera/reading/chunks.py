"""Content-chunked files (format v3) read in place: their units are their chunks.

A file a push cut by content has no place of its own: its chunks lie in chunk objects
shared across files and versions, where ``Manifest.extents`` says. Each chunk is a
:class:`~.plan.Unit` as a fixed chunk of a blob is (an object, an offset, a length,
the SHA-256 of its bytes), so the fetch, its coalescing per object, the cache and the
verification serve such a file unchanged, and a chunk object stored in frames is
inflated as any framed object is. This module maps a range of the file to the chunks
holding it, and joins their verified bytes back.

The places were checked when the manifest piece was read (:func:`etcetera.format.v3.unplace`
and :class:`etcetera.format.validate.Tables`): every chunk inside its object, the
lengths adding up to the file, the digests hashing to the file's digest.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence

from ..format.chunkobjects import Extent
from ..format.manifest import FileEntry
from .plan import Unit


class ChunkMap:
    """Where the bytes of one content-chunked file are.

    Attributes:
        entry: the file.
        units: its chunks in file order, as units of their objects.
        starts: the file offset of each chunk, then the file's size.
    """

    def __init__(self, entry: FileEntry, extents: Sequence[Extent]) -> None:
        self.entry = entry
        self.units = tuple(
            Unit(e.object, e.offset, e.size, e.digest.hex(), entry.path) for e in extents
        )
        self.starts = (0, *itertools.accumulate(e.size for e in extents))

    def _stop(self, end: int | None) -> int:
        return self.entry.size if end is None else min(end, self.entry.size)

    def _slice(self, start: int, stop: int) -> tuple[int, int]:
        """Indexes ``i, j``: chunks ``i .. j-1`` hold bytes ``start .. stop`` (non-empty)."""
        return bisect.bisect_right(self.starts, start) - 1, bisect.bisect_left(self.starts, stop)

    def touched(self, start: int = 0, end: int | None = None) -> list[Unit]:
        """The chunks holding bytes ``start .. end`` of the file (``end``: its size at most)."""
        stop = self._stop(end)
        if start >= stop:
            return []
        i, j = self._slice(start, stop)
        return list(self.units[i:j])

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """The file range of the whole chunks holding bytes ``start .. end``."""
        stop = self._stop(end)
        if start >= stop:
            return start, start
        i, j = self._slice(start, stop)
        return self.starts[i], self.starts[j]

    def assemble(self, start: int, end: int, got: Mapping[Unit, bytes | memoryview]) -> bytes:
        """Bytes ``start .. end`` of the file from its verified chunks in ``got``."""
        stop = self._stop(end)
        if start >= stop:
            return b""
        i, j = self._slice(start, stop)
        views = [memoryview(got[u]) for u in self.units[i:j]]
        views[-1] = views[-1][: stop - self.starts[j - 1]]
        views[0] = views[0][start - self.starts[i] :]
        return bytes(views[0]) if len(views) == 1 else b"".join(views)
