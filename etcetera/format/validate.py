"""The checks a manifest read from a repository passes before anything trusts it.

A shared repository is treated as hostile: a manifest (of format v1, v2 or v3, see
:mod:`etcetera.format.v1`, :mod:`etcetera.format.v2` and :mod:`etcetera.format.v3`)
must not name a path that could write outside a dataset folder
(:mod:`etcetera.format.paths`), nor describe an impossible tree: numbers out of range,
ids that are not SHA-256, files running past the end of their object, blobs or chunk
lists that disagree with their file, unsorted or clashing paths. Each reader turns
what it read into columns (:class:`etcetera.format.pieces.Columns`) and hands them to
:class:`Tables`, which checks them in a few C-speed passes and builds the
:class:`~etcetera.format.manifest.Manifest`.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from array import array
from collections.abc import Sequence
from typing import Any

from ..errors import ManifestError
from . import pieces, v3
from .bounds import brief, check_range, within
from .chunkobjects import Extent
from .hashing import combine
from .hexdigests import raw_digests
from .manifest import FileEntry, Manifest, ObjectEntry, ObjectKind
from .paths import check_path, check_paths, find_clashes
from .table import FileTable, TableBuilder

MAX_SIZE = 1 << 50  # 1 PiB: anything larger in a manifest is a lie
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX_LIST = re.compile(r"(?:[0-9a-f]{64}\x00)*[0-9a-f]{64}")

_KINDS: dict[str, ObjectKind] = {"pack": "pack", "blob": "blob", "chunks": "chunks"}


def check_int(value: object, what: str, lo: int = 0, hi: int = MAX_SIZE) -> int:
    """Return ``value`` if an int (not a bool) in ``lo .. hi``, else raise ``ManifestError``."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ManifestError(f"manifest {what} {brief(value)} is out of range")
    return value


def check_hex(value: object, what: str) -> str:
    """Return ``value`` if it is a SHA-256 hex digest, else raise ``ManifestError``."""
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(f"manifest {what} {value!r} is not a SHA-256 hex digest")
    return value


def check_header(doc: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    """chunk_size, partitions and dirs of a manifest document, checked."""
    chunk_size = check_int(doc["chunk_size"], "chunk_size", 1, 1 << 34)
    partitions = doc["partitions"]
    if not isinstance(partitions, list) or not partitions:
        raise ManifestError("manifest has no partitions")
    for p in partitions:
        if not isinstance(p, str):
            raise ManifestError(f"manifest partition {p!r} is not a name")
        check_path(p)
        if "/" in p:
            raise ManifestError(f"manifest partition {p!r} is not a single folder name")
    if sorted(set(partitions)) != partitions:
        raise ManifestError("manifest partitions are not sorted and unique")
    clashes = find_clashes(partitions)
    if clashes:
        raise ManifestError(f"manifest partitions {clashes[0][0]!r} and {clashes[0][1]!r} clash")
    dirs = doc.get("dirs", [])
    if not isinstance(dirs, list):
        raise ManifestError("manifest dirs are malformed")
    for d in dirs:
        check_path(d)
        if d == "data" or d.startswith("data/"):
            raise ManifestError(f"manifest folder {d!r} sits inside data/")
    return chunk_size, partitions, sorted(set(dirs))


class Tables:
    """Collects the checked file tables of a manifest (one per v1 doc, one per v2 piece).

    Every check is a pass at C speed over a column (``map``, ``min``, one ``join`` and
    one ``casefold`` of a piece's paths), never a Python statement per file, and what
    is kept is columns (:class:`~etcetera.format.table.TableBuilder`), never an object
    per file: a manifest of 10^7 files is read in seconds and held in ~1 GiB.
    """

    def __init__(self, chunk_size: int, partitions: list[str]) -> None:
        self.chunk_size = chunk_size
        self.partitions = set(partitions)
        self.objects: dict[str, ObjectEntry] = {}
        self.table = TableBuilder()
        #: Per group: whether every path of it is its own case fold (then no two of them
        #: clash by case, and only a file where a folder is needs a look), and its folders.
        self._plain: dict[str, bool] = {}
        self._folders: dict[str, set[str]] = {}  # files that may be folders of others
        self._last: dict[str, str] = {}
        self.extents: dict[str, tuple[Extent, ...]] = {}
        self._chunk_sizes: dict[bytes, int] = {}

    @property
    def files(self) -> list[FileEntry]:
        """The files added so far, as entries."""
        return list(self.table.table())

    def add(self, cols: pieces.Columns, *, trusted_types: bool) -> None:
        """Check one table and append its files (they must follow the previous ones)."""
        framing = None
        loose: dict[int, tuple[Extent, ...]] = {}
        if cols.placed:  # v3: encodings and chunk places, checked and mapped first
            placed = cols
            cols, framing = v3.unplace(cols, self.chunk_size)
            if cols is not placed:  # (unplace hands back a table without chunks as it is)
                loose = v3.extents(placed, cols)
        n, m = len(cols.paths), len(cols.object_ids)
        if not (
            len(cols.object_kinds) == len(cols.object_sizes) == m
            and len(cols.sizes)
            == len(cols.modes)
            == len(cols.objects)
            == len(cols.offsets)
            == len(cols.digests)
            == len(cols.chunks)
            == n
        ):
            raise ManifestError("manifest table columns disagree in length")
        if not trusted_types:
            _check_types(cols)
        for col, what, lo, hi in (
            (cols.object_sizes, "object size", 0, MAX_SIZE),
            (cols.sizes, "file size", 0, MAX_SIZE),
            (cols.modes, "file mode", 0, 0o777),
            (cols.objects, "object index", -1, m - 1),
            (cols.offsets, "file offset", 0, MAX_SIZE),
        ):
            check_range(col, what, lo, hi)
        ids = cols.object_ids
        if ids != sorted(ids) or len(set(ids)) != m:
            raise ManifestError("manifest objects are not sorted and unique")
        self._objects(cols, framing)
        paths = cols.paths
        joined = check_paths(paths, strings=trusted_types, joined=cols.joined)
        last = self.table.last_path()
        if last is not None and n and paths[0] <= last:
            raise ManifestError(f"manifest paths are not sorted and unique at {paths[0]!r}")
        if not all(map(operator.lt, paths, itertools.islice(paths, 1, None))):
            bad = next(b for a, b in itertools.pairwise(paths) if a >= b)
            raise ManifestError(f"manifest paths are not sorted and unique at {bad!r}")
        self._check_groups(cols, joined)
        _check_extents(cols, loose)
        digests = raw_digests(cols.digests)
        chunked = any(cols.chunks)
        self._check_chunks(cols, loose, chunked)
        self.table.add(
            paths,
            cols.sizes,
            cols.modes,
            cols.objects,
            cols.offsets,
            digests,
            cols.chunks if chunked else (),
            ids,
            joined,
        )

    def _objects(self, cols: pieces.Columns, framing: list[v3.Framing] | None) -> None:
        """Register the table's objects (one listed by two tables must agree)."""
        m = len(cols.object_ids)
        for oid, kind, size, how in zip(
            cols.object_ids,
            cols.object_kinds,
            cols.object_sizes,
            framing or [v3.IDENTITY] * m,
            strict=True,
        ):
            known = self.objects.get(oid)
            if known is None:
                self.objects[oid] = ObjectEntry(oid, _KINDS[kind], size, *how)
            elif known != (oid, kind, size, *how):
                raise ManifestError(f"manifest object {oid} is listed twice, differently")

    def _check_groups(self, cols: pieces.Columns, joined: str) -> None:
        paths = cols.paths
        if not paths:
            return
        if cols.group:
            prefix = f"data/{cols.group}/"
            if cols.group not in self.partitions:
                raise ManifestError(f"manifest piece of unlisted partition {cols.group!r}")
            # Sorted: if the first and the last path start with the prefix, all do.
            if not (paths[0].startswith(prefix) and paths[-1].startswith(prefix)):
                bad = next(p for p in paths if not p.startswith(prefix))
                raise ManifestError(f"manifest file {bad!r} is outside its piece's partition")
            self._note(cols.group, paths, joined)
            return
        lo = bisect.bisect_left(paths, "data/")
        hi = bisect.bisect_left(paths, "data0", lo)  # "0" follows "/"
        runs = [("", 0, lo), ("", hi, len(paths))]
        for part in self.partitions:
            a = bisect.bisect_left(paths, f"data/{part}/", lo, hi)
            runs.append((part, a, bisect.bisect_left(paths, f"data/{part}0", a, hi)))
        if sum(b - a for _, a, b in runs) != len(paths):
            for path in paths[lo:hi]:
                parts = path.split("/", 2)
                if len(parts) < 3:
                    raise ManifestError(f"manifest file {path!r} sits in data/ outside a partition")
                if parts[1] not in self.partitions:
                    raise ManifestError(f"manifest file {path!r} is in an unlisted partition")
        for group, a, b in runs:
            if b > a:
                run = paths[a:b]
                self._note(group, run, "\x00".join(run))

    def _note(self, group: str, paths: list[str], joined: str) -> None:
        """Remember what the clash checks of ``finish`` need of these paths of ``group``.

        In a group whose sorted, unique paths are each their own case fold, a clash can
        only be a file ``P`` where another path needs a folder (``P/...``); the path that
        follows ``P`` then starts with ``P`` (all between ``P`` and ``P/...`` do), so the
        adjacent pairs give the few candidates, looked up in ``finish``.
        """
        plain = joined.casefold() == joined  # (NFC already: check_paths)
        self._plain[group] = self._plain.get(group, True) and plain
        if not plain:
            return
        before = self._last.get(group)
        ahead = paths if before is None else [before, *paths]
        after = itertools.islice(paths, 1 if before is None else 0, None)
        candidates = self._folders.setdefault(group, set())
        candidates.update(itertools.compress(ahead, map(str.startswith, after, ahead)))
        self._last[group] = paths[-1]

    def _check_chunks(
        self, cols: pieces.Columns, loose: dict[int, tuple[Extent, ...]], chunked: bool
    ) -> None:
        cs = self.chunk_size
        if within(cols.sizes, 0, cs):  # no file above one chunk (a C-speed look)
            if chunked:
                raise ManifestError("manifest chunk lists do not match the file sizes")
            return
        n = len(cols.sizes)
        big = list(itertools.compress(range(n), map(cs.__lt__, cols.sizes)))
        if big != list(itertools.compress(range(n), cols.chunks)):
            raise ManifestError("manifest chunk lists do not match the file sizes")
        for j in big:
            if j in loose:
                continue  # any number of chunks, their digest checked by v3.unplace
            ch = cols.chunks[j]
            if len(ch) != -(-cols.sizes[j] // cs) or (
                combine([bytes.fromhex(c) for c in ch]) != cols.digests[j]
            ):
                raise ManifestError(f"manifest chunks of {cols.paths[j]!r} do not match its digest")
        for j, ext in loose.items():  # content-chunked files: few, a loop over them only
            for e in ext:  # one digest, one length: in every file and piece
                if self._chunk_sizes.setdefault(e.digest, e.size) != e.size:
                    raise ManifestError(
                        f"manifest chunk {e.digest.hex()[:16]} of {cols.paths[j]!r} is listed "
                        "with two lengths"
                    )
            self.extents[cols.paths[j]] = ext

    def finish(self, partitions: list[str], dirs: list[str]) -> Manifest:
        """Cross-table checks (clashes within each group, folders), then the manifest."""
        table = self.table.table()
        lo, hi = table.span("data/")
        for group in self._plain:
            if group:
                self._check_clashes(table, group, *table.span(f"data/{group}/", lo, hi))
        # Outside data/: its own files, its empty folders, and the data/ folder itself;
        # a path that folds onto data/ ("Data/train/a") is checked against every file.
        top = [*table.paths(0, lo), *table.paths(hi)]
        if any(p.casefold().startswith("data/") for p in top):
            everything = table.paths(lo, hi)
        else:
            everything = [f"data/{p}/x" for p in partitions]
        clashes = find_clashes([*top, *dirs, *everything])
        if clashes:
            a, b = clashes[0]
            raise ManifestError(f"manifest paths {a!r} and {b!r} clash")
        return Manifest(
            table,
            self.objects,
            tuple(partitions),
            self.chunk_size,
            tuple(dirs),
            extents=self.extents,
        )

    def _check_clashes(self, table: FileTable, group: str, lo: int, hi: int) -> None:
        if self._plain[group]:
            for path in sorted(self._folders[group]):
                a, b = table.span(f"{path}/", lo, hi)
                if b > a:
                    folder = table.path(a).rpartition("/")[0]
                    raise ManifestError(f"manifest paths {path!r} and {folder!r} clash")
            return
        clashes = find_clashes(table.paths(lo, hi))
        if clashes:
            raise ManifestError(f"manifest paths {clashes[0][0]!r} and {clashes[0][1]!r} clash")


def _check_types(cols: pieces.Columns) -> None:
    """The types of a table parsed from JSON (a piece's decoder makes them itself)."""
    ints = (cols.object_sizes, cols.sizes, cols.modes, cols.objects, cols.offsets)
    if not all(type(x) is int for col in ints for x in col):
        raise ManifestError("manifest has a number that is not an integer")
    hexes = [*cols.object_ids, *cols.digests]
    if hexes and (
        not all(type(h) is str for h in hexes) or not _HEX_LIST.fullmatch("\x00".join(hexes))
    ):
        raise ManifestError("manifest has an id or digest that is not SHA-256 hex")
    for ch in cols.chunks:
        for c in ch:
            check_hex(c, "chunk digest")


def _check_extents(cols: pieces.Columns, loose: dict[int, tuple[Extent, ...]]) -> None:
    """Every file inside its object (an empty file: no object, offset 0); blobs match.

    A content-chunked file (in ``loose``) has none: its chunks were checked inside theirs.
    """
    osize = [*cols.object_sizes, 0]
    sizes: Sequence[int] = cols.sizes
    if loose:
        zeroed = array("Q", sizes)
        for j in loose:
            zeroed[j] = 0
        sizes = zeroed
    if not all(
        map(
            operator.le,
            map(operator.add, cols.offsets, sizes),
            map(osize.__getitem__, cols.objects),
        )
    ):
        bad_path = next(
            p
            for p, o, s, i in zip(cols.paths, cols.offsets, sizes, cols.objects, strict=True)
            if o + s > osize[i]
        )
        raise ManifestError(f"manifest file {bad_path!r} runs past the end of its object")
    blobs = {i for i, k in enumerate(cols.object_kinds) if k == "blob"}
    if not blobs:
        return
    ids = cols.object_ids
    for j in itertools.compress(range(len(cols.objects)), map(blobs.__contains__, cols.objects)):
        i = cols.objects[j]
        if ids[i] != cols.digests[j] or cols.object_sizes[i] != cols.sizes[j] or cols.offsets[j]:
            raise ManifestError(f"manifest blob of {cols.paths[j]!r} does not match the file")
