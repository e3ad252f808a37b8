"""The file table of a manifest, held as columns rather than as one Python object per file.

A named tuple per file costs ~400 bytes (the tuple, its path and digest strings, its
ints): 4 GiB for 10^7 files. Here the numbers are arrays, and the rest is kept per
*run* of rows (a manifest piece, appended as it was read, never copied into one
growing buffer): its paths one UTF-8 buffer (joined by NULs) with an array of where
each starts, its digests one buffer of raw bytes, its object ids one list that the
rows' object column indexes. With the chunk lists of the few files above one chunk in
a dict, that is about 100 bytes per file. :class:`FileTable` still reads as a sorted
sequence of :class:`FileEntry` (made on the fly, a block at a time), so that code which
iterates, indexes or looks up files does not change.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, overload

from .entries import FileEntry, ObjectEntry, ObjectKind
from .hexdigests import DIGEST, HexDigests, raw_digests, split_hex

__all__ = ["FileEntry", "FileTable", "HexDigests", "ObjectEntry", "ObjectKind", "TableBuilder"]

_BLOCK = 4096  # entries made per step of an iteration


class Run(NamedTuple):
    """What one run of consecutive rows keeps beside the table's number columns.

    Attributes:
        paths: the run's paths, UTF-8, joined by NULs.
        starts: ``len(paths) + 1`` cumulative byte lengths of the paths without their
            NULs: path ``k`` is ``paths[starts[k] + k : starts[k + 1] + k]``.
        digests: the run's digests, raw, 32 bytes each.
        ids: the object ids the run's object column indexes, then ``""`` (index ``-1``).
    """

    paths: bytes
    starts: array[int]
    digests: bytes
    ids: list[str]


_new_entry = tuple.__new__  # skips NamedTuple's Python-level __new__


class FileTable(Sequence[FileEntry]):
    """The files of a manifest in path order, as columns (see the module docstring).

    Built by :class:`TableBuilder` (or :meth:`of` from entries); read-only after.

    Attributes:
        sizes: bytes of each file.
        modes: permission bits of each file.
        offsets: where each file starts in its object.
    """

    __slots__ = ("_chunks", "_firsts", "_objects", "_runs", "modes", "offsets", "sizes")

    def __init__(
        self,
        runs: Sequence[tuple[int, Run]],
        sizes: array[int],
        modes: array[int],
        objects: array[int],
        offsets: array[int],
        chunks: dict[int, tuple[str, ...]],
    ) -> None:
        self._firsts = array("Q", [first for first, _ in runs])  # the first row of each run
        self._runs = [run for _, run in runs]
        self.sizes = sizes
        self.modes = modes
        self._objects = objects  # row i's object: its run's ids[_objects[i]]
        self.offsets = offsets
        self._chunks = chunks

    @classmethod
    def of(cls, entries: Iterable[FileEntry]) -> FileTable:
        """The table of ``entries`` (kept in their order, unchecked)."""
        rows = list(entries)
        if not rows:
            return TableBuilder().table()
        paths, sizes, modes, digests, oids, offsets, chunks = zip(*rows, strict=True)
        return cls.of_columns(list(paths), sizes, modes, digests, oids, offsets, chunks)

    @classmethod
    def of_columns(
        cls,
        paths: list[str],
        sizes: Sequence[int],
        modes: Sequence[int],
        digests: Sequence[str],
        object_ids: Sequence[str],
        offsets: Sequence[int],
        chunks: Sequence[tuple[str, ...]],
    ) -> FileTable:
        """The table of files given column by column (``object_ids``: ``""`` for none)."""
        ids = sorted(set(object_ids) - {""})
        index = {oid: i for i, oid in enumerate(ids)}
        index[""] = -1
        builder = TableBuilder()
        objects = array("i", map(index.__getitem__, object_ids))
        builder.add(paths, sizes, modes, objects, offsets, raw_digests(digests), chunks, ids)
        return builder.table()

    def __len__(self) -> int:
        return len(self.sizes)

    @overload
    def __getitem__(self, i: int) -> FileEntry: ...
    @overload
    def __getitem__(self, i: slice) -> list[FileEntry]: ...
    def __getitem__(self, i: int | slice) -> FileEntry | list[FileEntry]:
        if isinstance(i, slice):
            lo, hi, step = i.indices(len(self))
            if step == 1:
                return list(self.entries(lo, hi))
            return [self[j] for j in range(lo, hi, step)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("file table index out of range")
        return next(self.entries(i, i + 1))

    def __iter__(self) -> Iterator[FileEntry]:
        n = len(self)
        for lo in range(0, n, _BLOCK):
            yield from self.entries(lo, min(n, lo + _BLOCK))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (
                self.sizes == other.sizes
                and self.modes == other.modes
                and self.offsets == other.offsets
                and self._chunks == other._chunks
                and b"\x00".join(r.paths for r in self._runs)
                == b"\x00".join(r.paths for r in other._runs)
                and b"".join(r.digests for r in self._runs)
                == b"".join(r.digests for r in other._runs)
                and self.object_ids() == other.object_ids()
            )
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileTable({len(self)} files)"

    def _pieces(self, lo: int, hi: int) -> Iterator[tuple[Run, int, int, int]]:
        """``(run, first, a, b)`` for each run that rows ``lo`` to ``hi`` cover.

        ``first`` is the table row of the run's row 0; ``a`` to ``b`` its rows covered.
        """
        firsts = self._firsts
        r = bisect.bisect_right(firsts, lo) - 1
        while lo < hi:
            first = firsts[r]
            end = min(hi, firsts[r + 1]) if r + 1 < len(firsts) else hi
            yield self._runs[r], first, lo - first, end - first
            lo, r = end, r + 1

    def path(self, i: int) -> str:
        """The path of file ``i``."""
        r = bisect.bisect_right(self._firsts, i) - 1
        run, k = self._runs[r], i - self._firsts[r]
        s = run.starts
        return str(memoryview(run.paths)[s[k] + k : s[k + 1] + k], "utf-8")

    def paths(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The paths of files ``lo`` to ``hi`` (one decode and one split per run)."""
        hi = len(self) if hi is None else hi
        out: list[str] = []
        for run, first, a, b in self._pieces(lo, hi):
            s = run.starts
            text = str(memoryview(run.paths)[s[a] + a : s[b] + b - 1], "utf-8").split("\x00")
            if len(text) != b - a:  # a path holding a NUL (a table built unchecked)
                text = [self.path(first + k) for k in range(a, b)]
            out += text
        return out

    def digests(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The digests (hex) of files ``lo`` to ``hi``."""
        hi = len(self) if hi is None else hi
        out: list[str] = []
        for run, _, a, b in self._pieces(lo, hi):
            out += split_hex(memoryview(run.digests)[DIGEST * a : DIGEST * b])
        return out

    def object_ids(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The object id of files ``lo`` to ``hi`` (``""``: none)."""
        lo, hi, _ = slice(lo, hi).indices(len(self))
        out: list[str] = []
        for run, first, a, b in self._pieces(lo, hi):
            out += map(run.ids.__getitem__, self._objects[first + a : first + b])
        return out

    def chunks(self, lo: int = 0, hi: int | None = None) -> list[tuple[str, ...]]:
        """The chunk lists of files ``lo`` to ``hi``."""
        hi = len(self) if hi is None else hi
        return list(map(self._chunks.get, range(lo, hi), itertools.repeat(())))

    def entries(self, lo: int, hi: int) -> Iterator[FileEntry]:
        """Files ``lo`` to ``hi`` as :class:`FileEntry` (made now, a block at a time)."""
        rows = zip(
            self.paths(lo, hi),
            self.sizes[lo:hi],
            self.modes[lo:hi],
            self.digests(lo, hi),
            self.object_ids(lo, hi),
            self.offsets[lo:hi],
            self.chunks(lo, hi),
            strict=True,
        )
        return map(_new_entry, itertools.repeat(FileEntry), rows)

    def index(self, path: str, start: int = 0, stop: int | None = None) -> int:
        """Where ``path`` is (a binary search: the table is sorted).

        Raises:
            ValueError: no file has that path.
        """
        hi = len(self) if stop is None else stop
        i = self.bisect(path, start, hi)
        if i < hi and self.path(i) == path:
            return i
        raise ValueError(f"{path!r} is not in the file table")

    def bisect(self, path: str, lo: int = 0, hi: int | None = None) -> int:
        """The first index whose path is not below ``path``."""
        hi = len(self) if hi is None else hi
        return bisect.bisect_left(range(hi), path, lo, hi, key=self.path)

    def find(self, path: str) -> FileEntry | None:
        """The file at ``path``, or ``None``."""
        i = self.bisect(path)
        return self[i] if i < len(self) and self.path(i) == path else None

    def span(self, prefix: str, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
        """``(lo, hi)``: the run of files whose paths start with ``prefix`` (not empty)."""
        hi = len(self) if hi is None else hi
        start = self.bisect(prefix, lo, hi)
        end = self.bisect(prefix[:-1] + chr(ord(prefix[-1]) + 1), start, hi)
        return start, end

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return sum(self.sizes)


class TableBuilder:
    """Appends checked columns, piece after piece, into one :class:`FileTable`."""

    def __init__(self) -> None:
        self._runs: list[tuple[int, Run]] = []
        self._sizes = array("Q")
        self._modes = array("H")
        self._objects = array("i")
        self._offsets = array("Q")
        self._chunks: dict[int, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._sizes)

    def last_path(self) -> str | None:
        """The path appended last, or ``None``."""
        if not self._runs:
            return None
        run = self._runs[-1][1]
        s, k = run.starts, len(run.starts) - 2
        return str(memoryview(run.paths)[s[k] + k : s[k + 1] + k], "utf-8")

    def add(
        self,
        paths: list[str],
        sizes: Iterable[int],
        modes: Iterable[int],
        objects: Iterable[int],
        offsets: Iterable[int],
        digests: bytes,
        chunks: Sequence[tuple[str, ...]],
        object_ids: Sequence[str],
        joined: str | None = None,
    ) -> None:
        """Append a run of files: ``objects`` index ``object_ids`` (``-1``: none).

        ``digests``: raw, kept as given. ``chunks``: per file, or empty for none at all.
        ``joined``: the paths joined by NULs, if the caller has them so already. The
        number columns are copied at C speed when they are arrays of the table's types.
        """
        if not paths:
            return
        n0 = len(self._sizes)
        text = "\x00".join(paths) if joined is None else joined
        data = text.encode()
        lengths = map(len, paths) if len(data) == len(text) else map(len, map(str.encode, paths))
        starts = array("I" if len(data) < 1 << 32 else "Q")
        starts.extend(itertools.accumulate(lengths, initial=0))
        self._runs.append((n0, Run(data, starts, digests, [*object_ids, ""])))
        self._sizes.extend(sizes)
        self._modes.extend(modes)
        self._objects.extend(objects)
        self._offsets.extend(offsets)
        if any(chunks):
            for j in itertools.compress(range(len(chunks)), chunks):
                self._chunks[n0 + j] = chunks[j]

    def table(self) -> FileTable:
        """The table of everything added."""
        return FileTable(
            self._runs, self._sizes, self._modes, self._objects, self._offsets, self._chunks
        )
