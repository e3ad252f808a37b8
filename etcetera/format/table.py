"""The file table of a manifest, held as columns rather than as one Python object per file.

A named tuple per file costs ~400 bytes (the tuple, its path and digest strings, its
ints): 4 GiB for 10^7 files. Here the paths are one UTF-8 buffer with an array of
offsets, the digests one buffer of raw bytes, the numbers arrays, the objects indexes
into one list of ids, and the chunk lists (of the few files above one chunk) a dict:
about 100 bytes per file. :class:`FileTable` still reads as a sorted sequence of
:class:`FileEntry` (made on the fly, a block at a time), so that code which iterates,
indexes or looks up files does not change.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, NamedTuple, overload

from .frames import stored_size

ObjectKind = Literal["pack", "blob", "chunks"]

_BLOCK = 4096  # entries made per step of an iteration
_DIGEST = 32


class ObjectEntry(NamedTuple):
    """A stored object: a pack of small files, the blob of one large file, or chunks.

    Attributes:
        id: its id (the key's last part).
        kind: ``"pack"``, ``"blob"`` or ``"chunks"`` (chunks of large files, format v3).
        size: logical bytes (what it inflates to).
        encoding: ``"identity"`` (stored as it is) or ``"zstd"`` (in frames).
        frame_size: logical bytes of each frame but the last (``0``: identity).
        frames: stored bytes of each frame (``()``: identity).
    """

    id: str
    kind: ObjectKind
    size: int
    encoding: str = "identity"
    frame_size: int = 0
    frames: tuple[int, ...] = ()

    @property
    def stored_size(self) -> int:
        """Bytes the store holds: ``size``, or the frames and their seek table."""
        return stored_size(self.frames) if self.frames else self.size


class FileEntry(NamedTuple):
    """One regular file of the dataset tree, as :class:`FileTable` hands it out.

    Attributes:
        path: relative, ``/``-separated, NFC path.
        size: bytes.
        mode: permission bits (``0o644``, ``0o755`` ...).
        digest: format-v1 digest (see :mod:`etcetera.format.hashing`).
        object: id of the object holding the bytes; empty for an empty file.
        offset: where the bytes start in that object.
        chunks: chunk digests of a multi-chunk file, else empty.
    """

    path: str
    size: int
    mode: int
    digest: str
    object: str = ""
    offset: int = 0
    chunks: tuple[str, ...] = ()

    @property
    def partition(self) -> str | None:
        """Partition name for files under ``data/``, else ``None``."""
        if self.path.startswith("data/"):
            return self.path.split("/", 2)[1]
        return None


_new_entry = tuple.__new__  # skips NamedTuple's Python-level __new__


def split_hex(data: bytes | memoryview, width: int = _DIGEST) -> list[str]:
    """Hex strings of consecutive ``width``-byte digests (one C-speed pass)."""
    text = data.hex()
    step = 2 * width
    cuts = map(slice, range(0, len(text), step), itertools.count(step, step))
    return list(map(text.__getitem__, cuts))


class HexDigests(Sequence[str]):
    """SHA-256 digests held as raw bytes, read as hex strings (made when asked for)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) % _DIGEST:
            raise ValueError("digest bytes are not a whole number of digests")
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw) // _DIGEST

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
        return self.raw[_DIGEST * i : _DIGEST * (i + 1)].hex()

    def __iter__(self) -> Iterator[str]:
        return iter(split_hex(self.raw))


def raw_digests(digests: Sequence[str]) -> bytes:
    """The raw bytes of hex digests (checked hex: ``bytes.fromhex`` refuses the rest)."""
    if isinstance(digests, HexDigests):
        return digests.raw
    return bytes.fromhex("".join(digests))


class FileTable(Sequence[FileEntry]):
    """The files of a manifest in path order, as columns (see the module docstring).

    Built by :class:`TableBuilder` (or :meth:`of` from entries); read-only after.
    """

    __slots__ = ("_chunks", "_digests", "_ids", "_paths", "_starts", "modes", "objects",
                 "offsets", "sizes")  # fmt: skip

    def __init__(
        self,
        paths: bytes | bytearray,
        starts: array[int],
        sizes: array[int],
        modes: array[int],
        objects: array[int],
        offsets: array[int],
        digests: bytes | bytearray,
        object_ids: Sequence[str],
        chunks: dict[int, tuple[str, ...]],
    ) -> None:
        self._paths = paths
        self._starts = starts  # path i is _paths[_starts[i] : _starts[i + 1] - 1] (a NUL ends it)
        self.sizes = sizes
        self.modes = modes
        self.objects = objects  # index into _ids; -1 (the "" at its end): no object
        self.offsets = offsets
        self._digests = digests
        self._ids = [*object_ids, ""]
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
        builder.object_ids = ids
        builder.add(
            paths,
            sizes,
            modes,
            map(index.__getitem__, object_ids),
            offsets,
            raw_digests(digests),
            chunks,
        )
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
                self._paths == other._paths
                and self._starts == other._starts
                and self.sizes == other.sizes
                and self.modes == other.modes
                and self.offsets == other.offsets
                and self._digests == other._digests
                and self._chunks == other._chunks
                and self.object_ids() == other.object_ids()
            )
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileTable({len(self)} files)"

    def path(self, i: int) -> str:
        """The path of file ``i``."""
        s = self._starts
        return str(memoryview(self._paths)[s[i] : s[i + 1] - 1], "utf-8")

    def paths(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The paths of files ``lo`` to ``hi`` (one decode and one split)."""
        hi = len(self) if hi is None else hi
        if lo >= hi:
            return []
        s = self._starts
        out = str(memoryview(self._paths)[s[lo] : s[hi] - 1], "utf-8").split("\x00")
        if len(out) != hi - lo:  # a path holding a NUL (a table built unchecked)
            return [self.path(i) for i in range(lo, hi)]
        return out

    def digests(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The digests (hex) of files ``lo`` to ``hi``."""
        hi = len(self) if hi is None else hi
        return split_hex(memoryview(self._digests)[_DIGEST * lo : _DIGEST * max(lo, hi)])

    def object_id(self, index: int) -> str:
        """The id of the table's object ``index`` (``-1``: ``""``)."""
        return self._ids[index]

    def object_ids(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """The object id of files ``lo`` to ``hi`` (``""``: none)."""
        return list(map(self._ids.__getitem__, self.objects[lo:hi]))

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
        self.object_ids: list[str] = []
        self._paths = bytearray()
        self._starts = array("Q", [0])
        self._sizes = array("Q")
        self._modes = array("H")
        self._objects = array("i")
        self._offsets = array("Q")
        self._digests = bytearray()
        self._chunks: dict[int, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._sizes)

    def last_path(self) -> str | None:
        """The path appended last, or ``None``."""
        n = len(self._sizes)
        if not n:
            return None
        s = self._starts
        return str(memoryview(self._paths)[s[n - 1] : s[n] - 1], "utf-8")

    def add(
        self,
        paths: list[str],
        sizes: Iterable[int],
        modes: Iterable[int],
        objects: Iterable[int],
        offsets: Iterable[int],
        digests: bytes,
        chunks: Sequence[tuple[str, ...]],
        joined: str | None = None,
    ) -> None:
        """Append files (``objects``: indexes into ``object_ids``; ``digests``: raw bytes).

        ``joined``: the paths joined by NULs, if the caller has them so already.
        """
        if not paths:
            return
        n0 = len(self._sizes)
        text = "\x00".join(paths) if joined is None else joined
        self._paths += text.encode()
        self._paths += b"\x00"
        lengths = map(len, paths) if text.isascii() else map(len, map(str.encode, paths))
        acc = itertools.accumulate(map((1).__add__, lengths), initial=self._starts[-1])
        next(acc)
        self._starts.extend(acc)
        self._sizes.extend(sizes)
        self._modes.extend(modes)
        self._objects.extend(objects)
        self._offsets.extend(offsets)
        self._digests += digests
        for j in itertools.compress(range(len(chunks)), chunks):
            self._chunks[n0 + j] = chunks[j]

    def table(self) -> FileTable:
        """The table of everything added."""
        return FileTable(
            self._paths,
            self._starts,
            self._sizes,
            self._modes,
            self._objects,
            self._offsets,
            self._digests,
            self.object_ids,
            self._chunks,
        )
