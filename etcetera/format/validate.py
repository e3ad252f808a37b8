"""The checks a manifest read from a repository passes before anything trusts it.

A shared repository is treated as hostile: a manifest (of format v1 or v2, see
:mod:`etcetera.format.v1` and :mod:`etcetera.format.v2`) must not name a path that
could write outside a dataset folder (:mod:`etcetera.format.paths`), nor describe an
impossible tree: numbers out of range, ids that are not SHA-256, files running past
the end of their object, blobs or chunk lists that disagree with their file,
unsorted or clashing paths. Each reader turns what it read into columns
(:class:`etcetera.format.pieces.Columns`) and hands them to :class:`Tables`, which
checks them in a few C-speed passes and builds the :class:`~etcetera.format.manifest.Manifest`.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterator
from typing import Any

from ..errors import ManifestError
from . import pieces, v3
from .chunkobjects import Extent
from .hashing import combine
from .manifest import FileEntry, Manifest, ObjectEntry, ObjectKind
from .paths import check_path, check_paths, find_clashes

MAX_SIZE = 1 << 50  # 1 PiB: anything larger in a manifest is a lie
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX_LIST = re.compile(r"(?:[0-9a-f]{64}\x00)*[0-9a-f]{64}")

_KINDS: dict[str, ObjectKind] = {"pack": "pack", "blob": "blob", "chunks": "chunks"}
_new_entry = tuple.__new__  # skips NamedTuple's Python-level __new__ (10^5 calls per manifest)


def check_int(value: object, what: str, lo: int = 0, hi: int = MAX_SIZE) -> int:
    """Return ``value`` if an int (not a bool) in ``lo .. hi``, else raise ``ManifestError``."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ManifestError(f"manifest {what} {_brief(value)} is out of range")
    return value


def _brief(value: object) -> str:
    """``repr(value)``, cut short: a hostile number may have 4,000 digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:24]}... ({len(text)} characters)"


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
    """Collects the checked file tables of a manifest (one per v1 doc, one per v2 piece)."""

    def __init__(self, chunk_size: int, partitions: list[str]) -> None:
        self.chunk_size = chunk_size
        self.partitions = set(partitions)
        self.objects: dict[str, ObjectEntry] = {}
        self.files: list[FileEntry] = []
        self.by_group: dict[str, list[str]] = {}
        self.extents: dict[str, tuple[Extent, ...]] = {}
        self._chunk_sizes: dict[bytes, int] = {}

    def add(self, cols: pieces.Columns, *, trusted_types: bool) -> None:
        """Check one table and append its files (they must follow the previous ones)."""
        framing = None
        loose: dict[int, tuple[Extent, ...]] = {}
        if cols.placed:  # v3: encodings and chunk places, checked and mapped first
            placed = cols
            cols, framing = v3.unplace(cols, self.chunk_size)
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
        ints = (cols.object_sizes, cols.sizes, cols.modes, cols.objects, cols.offsets)
        if not trusted_types:
            if not all(type(x) is int for col in ints for x in col):
                raise ManifestError("manifest has a number that is not an integer")
            hexes = [*cols.object_ids, *cols.digests]
            if hexes and (
                not all(type(h) is str for h in hexes)
                or not _HEX_LIST.fullmatch("\x00".join(hexes))
            ):
                raise ManifestError("manifest has an id or digest that is not SHA-256 hex")
            for ch in cols.chunks:
                for c in ch:
                    check_hex(c, "chunk digest")
        for col, what, lo, hi in (
            (cols.object_sizes, "object size", 0, MAX_SIZE),
            (cols.sizes, "file size", 0, MAX_SIZE),
            (cols.modes, "file mode", 0, 0o777),
            (cols.objects, "object index", -1, m - 1),
            (cols.offsets, "file offset", 0, MAX_SIZE),
        ):
            if col and not (lo <= min(col) and max(col) <= hi):
                value = next(x for x in col if not lo <= x <= hi)
                raise ManifestError(f"manifest {what} {_brief(value)} is out of range")
        ids = cols.object_ids
        if ids != sorted(ids) or len(set(ids)) != m:
            raise ManifestError("manifest objects are not sorted and unique")
        for oid, kind, size, how in zip(
            ids, cols.object_kinds, cols.object_sizes, framing or [v3.IDENTITY] * m, strict=True
        ):
            known = self.objects.get(oid)
            if known is None:
                self.objects[oid] = ObjectEntry(oid, _KINDS[kind], size, *how)
            elif known != (oid, kind, size, *how):
                raise ManifestError(f"manifest object {oid} is listed twice, differently")
        paths = cols.paths
        check_paths(paths)
        if self.files and n and paths[0] <= self.files[-1].path:
            raise ManifestError(f"manifest paths are not sorted and unique at {paths[0]!r}")
        if not all(map(operator.lt, paths, itertools.islice(paths, 1, None))):
            bad = next(b for a, b in itertools.pairwise(paths) if a >= b)
            raise ManifestError(f"manifest paths are not sorted and unique at {bad!r}")
        self._check_groups(cols)
        # Every file inside its object (an empty file: no object, offset 0); a
        # content-chunked file has none, its chunks were checked inside theirs.
        osize = [*cols.object_sizes, 0]
        sizes = [0 if j in loose else s for j, s in enumerate(cols.sizes)] if loose else cols.sizes
        if not all(
            map(
                operator.le,
                map(operator.add, cols.offsets, sizes),
                map(osize.__getitem__, cols.objects),
            )
        ):
            bad_path = next(
                p
                for p, o, s, i in zip(paths, cols.offsets, sizes, cols.objects, strict=True)
                if o + s > osize[i]
            )
            raise ManifestError(f"manifest file {bad_path!r} runs past the end of its object")
        blobs = {i for i, k in enumerate(cols.object_kinds) if k == "blob"}
        if blobs:
            for j in [j for j, i in enumerate(cols.objects) if i in blobs]:
                i = cols.objects[j]
                if ids[i] != cols.digests[j] or cols.object_sizes[i] != cols.sizes[j]:
                    raise ManifestError(f"manifest blob of {paths[j]!r} does not match the file")
                if cols.offsets[j]:
                    raise ManifestError(f"manifest blob of {paths[j]!r} does not match the file")
        cs = self.chunk_size
        big = [j for j, s in enumerate(cols.sizes) if s > cs]
        if big != [j for j, ch in enumerate(cols.chunks) if ch]:
            raise ManifestError("manifest chunk lists do not match the file sizes")
        for j in big:
            ch = cols.chunks[j]
            if j in loose:
                continue  # any number of chunks, their digest checked by v3.unplace
            if len(ch) != -(-cols.sizes[j] // cs) or (
                combine([bytes.fromhex(c) for c in ch]) != cols.digests[j]
            ):
                raise ManifestError(f"manifest chunks of {paths[j]!r} do not match its digest")
        for j, ext in loose.items():
            for e in ext:  # one digest, one length: in every file and piece
                if self._chunk_sizes.setdefault(e.digest, e.size) != e.size:
                    raise ManifestError(
                        f"manifest chunk {e.digest.hex()[:16]} of {paths[j]!r} is listed "
                        "with two lengths"
                    )
            self.extents[paths[j]] = ext
        oids = [*ids, ""]
        self.files += map(
            _new_entry,
            itertools.repeat(FileEntry),
            zip(
                paths,
                cols.sizes,
                _shared(cols.modes),
                cols.digests,
                map(oids.__getitem__, cols.objects),
                cols.offsets,
                cols.chunks,
                strict=True,
            ),
        )

    def _check_groups(self, cols: pieces.Columns) -> None:
        paths = cols.paths
        if cols.group:
            prefix = f"data/{cols.group}/"
            if cols.group not in self.partitions:
                raise ManifestError(f"manifest piece of unlisted partition {cols.group!r}")
            if not all(map(str.startswith, paths, itertools.repeat(prefix))):
                bad = next(p for p in paths if not p.startswith(prefix))
                raise ManifestError(f"manifest file {bad!r} is outside its piece's partition")
            self.by_group.setdefault(cols.group, []).extend(paths)
            return
        for path in paths:
            if path.startswith("data/"):
                parts = path.split("/", 2)
                if len(parts) < 3:
                    raise ManifestError(f"manifest file {path!r} sits in data/ outside a partition")
                if parts[1] not in self.partitions:
                    raise ManifestError(f"manifest file {path!r} is in an unlisted partition")
                self.by_group.setdefault(parts[1], []).append(path)
            else:
                self.by_group.setdefault("", []).append(path)

    def finish(self, partitions: list[str], dirs: list[str]) -> Manifest:
        """Cross-table checks (clashes within each group, folders), then the manifest."""
        top = self.by_group.pop("", [])
        for group_paths in self.by_group.values():
            clashes = find_clashes(group_paths)
            if clashes:
                a, b = clashes[0]
                raise ManifestError(f"manifest paths {a!r} and {b!r} clash")
        # Outside data/: its own files, its empty folders, and the data/ folder itself;
        # a path that folds onto data/ ("Data/train/a") is checked against every file.
        if any(p.casefold().startswith("data/") for p in top):
            everything = [f.path for f in self.files if f.path.startswith("data/")]
        else:
            everything = [f"data/{p}/x" for p in partitions]
        clashes = find_clashes([*top, *dirs, *everything])
        if clashes:
            a, b = clashes[0]
            raise ManifestError(f"manifest paths {a!r} and {b!r} clash")
        return Manifest(
            tuple(self.files),
            self.objects,
            tuple(partitions),
            self.chunk_size,
            tuple(dirs),
            extents=self.extents,
        )


def _shared(values: list[int]) -> Iterator[int]:
    """The same int object for equal values (modes: a handful of values, 10^7 files)."""
    table = {v: v for v in set(values)}
    return map(table.__getitem__, values)
