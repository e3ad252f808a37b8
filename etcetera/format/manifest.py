"""Manifests and version records of format v1 (see ``docs/format.md``).

A manifest is the file table of one dataset tree: a pure function of the tree, so
that the same tree always gives the same bytes and the same manifest digest. A
version record (``refs/NAME/K``) names the manifest and says who pushed it and when.

Everything parsed here comes from a shared repository and is treated as hostile:
:func:`Manifest.parse` refuses anything that could write outside a dataset folder
or describe an impossible tree.
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import zstandard

from ..errors import IntegrityError, ManifestError
from . import _gc, pieces
from .hashing import CHUNK_SIZE, combine, sha256_hex

FORMAT_VERSION = 2
PIECE_MIN = 1 << 12  # files per piece, at least (but the last of a group) ...
PIECE_MAX = 1 << 16  # ... and at most
_PIECE_CUT = (1 << 32) >> 14  # then cut after a file whose path's CRC-32 is below: ~16k more
MAX_PIECE_FILES = PIECE_MAX
MAX_PIECE = pieces.MAX_PIECE
MANIFEST_KIND = "etcetera/manifest"
VERSION_KIND = "etcetera/version"
MAX_SIZE = 1 << 50  # 1 PiB: anything larger in a manifest is a lie
MAX_PATH = 4096
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ObjectKind = Literal["pack", "blob"]


class ObjectEntry(NamedTuple):
    """A stored object: a pack of small files or the blob of one large file."""

    id: str
    kind: ObjectKind
    size: int
    encoding: str = "identity"


class FileEntry(NamedTuple):
    """One regular file of the dataset tree (a named tuple: 10^5 of them are built per pull).

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


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"invalid dataset name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_path(path: object) -> str:
    """Return ``path`` if it is a safe relative dataset path, else raise ``ManifestError``."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"manifest path {path!r} is not a non-empty string")
    if len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise ManifestError(f"manifest path {path!r} has forbidden characters or length")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ManifestError(f"manifest path {path!r} is absolute")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"manifest path {path!r} climbs out or has empty segments")
    if unicodedata.normalize("NFC", path) != path:
        raise ManifestError(f"manifest path {path!r} is not NFC-normalised")
    return path


def find_clashes(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of paths equal once case-folded and NFC-normalised, or a file under a file."""
    originals = list(paths)
    if not originals:
        return []
    joined = "\x00".join(originals)
    if not joined.isascii():
        joined = unicodedata.normalize("NFC", joined)
    folded = joined.casefold().split("\x00")
    seen: dict[str, str] = dict(zip(folded, originals, strict=True))
    clashes: list[tuple[str, str]] = []
    if len(seen) != len(originals):
        first: dict[str, str] = {}
        for key, p in zip(folded, originals, strict=True):
            if key in first:
                clashes.append((first[key], p))
            else:
                first[key] = p
    # A file where another path needs a folder: look up each distinct parent folder.
    for parent in {key.rpartition("/")[0] for key in seen}:
        i = len(parent)
        while i > 0:
            hit = seen.get(parent[:i])
            if hit is not None:
                clashes.append((hit, parent))
            i = parent.rfind("/", 0, i)
    return clashes


_DRIVE = re.compile(r"\x00[A-Za-z]:")
_HEX_LIST = re.compile(r"(?:[0-9a-f]{64}\x00)*[0-9a-f]{64}")


def _paths_look_safe(joined: str) -> bool:
    wrapped = f"\x00{joined}\x00"
    if any(bad in wrapped for bad in ("\x00/", "\x00\x00", "/\x00", "//", "\\")):
        return False
    if ":" in wrapped and _DRIVE.search(wrapped):
        return False
    slashed = wrapped.replace("\x00", "/")
    return "/./" not in slashed and "/../" not in slashed


def check_paths(paths: list[str]) -> None:
    """Check many paths at once (a few C-speed scans); raise ``ManifestError`` on a bad one."""
    if not paths:
        return
    if set(map(type, paths)) != {str}:
        raise ManifestError("manifest has a path that is not a string")
    joined = "\x00".join(paths)
    if (
        joined.count("\x00") != len(paths) - 1
        or not _paths_look_safe(joined)
        or max(map(len, paths)) > MAX_PATH
        or not (joined.isascii() or unicodedata.is_normalized("NFC", joined))
    ):
        for p in paths:
            check_path(p)
        raise ManifestError("manifest has an invalid path")


@dataclass(frozen=True, slots=True)
class Manifest:
    """The file table of one dataset version.

    Attributes:
        files: regular files, sorted by path.
        objects: objects referenced by ``files``, by id.
        partitions: names of all partition folders, including empty ones, sorted.
        chunk_size: the hash chunk size the digests were made with.
        dirs: empty folders outside ``data/`` (they travel too), sorted.
        loaded: ``None`` when ``files`` is the whole table; else the partitions whose
            files it holds (with the files outside ``data/``): a v2 manifest read for a
            partial pull decodes only their pieces.
    """

    files: tuple[FileEntry, ...]
    objects: dict[str, ObjectEntry]
    partitions: tuple[str, ...]
    chunk_size: int = CHUNK_SIZE
    dirs: tuple[str, ...] = ()
    loaded: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    def select(self, partitions: Iterable[str] | None) -> Iterator[FileEntry]:
        """Files of the given partitions plus every file outside ``data/``.

        Raises:
            ValueError: a partition whose pieces were not read (see ``loaded``).
        """
        if self.loaded is not None:
            missing = set(self.partitions if partitions is None else partitions)
            missing -= set(self.loaded)
            if missing:
                raise ValueError(f"manifest read without partition {sorted(missing)[0]!r}")
        if partitions is None:
            yield from self.files
            return
        wanted = set(partitions)
        for f in self.files:
            part = f.partition
            if part is None or part in wanted:
                yield f

    def to_json(self) -> bytes:
        """Canonical format-v1 bytes (one JSON document); a push writes v2 instead."""
        ids = sorted(self.objects)
        index = {oid: i for i, oid in enumerate(ids)}
        doc: dict[str, Any] = {
            "format": MANIFEST_KIND,
            "version": 1,
            "chunk_size": self.chunk_size,
            "partitions": list(self.partitions),
            "dirs": list(self.dirs),
            "objects": [[o.id, o.kind, o.size, o.encoding] for o in (self.objects[i] for i in ids)],
            "files": [
                [f.path, f.size, f.mode, f.digest, index[f.object] if f.object else -1, f.offset]
                + ([list(f.chunks)] if f.chunks else [])
                for f in self.files
            ],
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def parse(
        cls,
        data: bytes,
        pieces: Mapping[str, bytes] | None = None,
        partitions: Iterable[str] | None = None,
    ) -> Manifest:
        """Parse and validate a manifest read from a repository (format v1 or v2).

        Args:
            data: the manifest's bytes (for v2, its root).
            pieces: for v2, the stored bytes of the pieces the root lists, by id.
            partitions: for v2, decode only these partitions' pieces (and those of the
                files outside ``data/``); ``None``: all. The result's ``loaded`` says so.

        Raises:
            ManifestError: the bytes are not a valid manifest, or describe paths that
                are unsafe, duplicated, or inconsistent with their objects.
        """
        root = ManifestRoot.parse(data)
        try:
            with _gc.paused():
                if root.version == 1:
                    return _build_v1(root.doc)
                return _build_v2(root, pieces or {}, partitions)
        except (ManifestError, IntegrityError):
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise ManifestError(f"manifest is malformed ({exc})") from None


@dataclass(frozen=True, slots=True)
class PieceRef:
    """A piece as its manifest root lists it.

    Attributes:
        id: SHA-256 (hex) of the piece's uncompressed bytes.
        group: its partition, or ``""`` for files outside ``data/``.
        files: files it describes.
        size: bytes of those files.
        length: bytes of the uncompressed piece.
    """

    id: str
    group: str
    files: int
    size: int
    length: int


@dataclass(frozen=True, slots=True)
class ManifestRoot:
    """The first document of a manifest: all of a v1 manifest, the root of a v2 one.

    Attributes:
        version: format version (1 or 2).
        pieces: the pieces of a v2 manifest, in path order (empty for v1).
        doc: the parsed JSON document.
    """

    version: int
    pieces: tuple[PieceRef, ...]
    doc: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes) -> ManifestRoot:
        """Parse the header and the piece list of a manifest.

        Raises:
            ManifestError: not a manifest, a version this etcetera does not know, or
                a malformed piece list.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_KIND:
            raise ManifestError("not an etcetera manifest")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ManifestError(f"manifest has an invalid format version {version!r}")
        if version > FORMAT_VERSION:
            raise ManifestError(
                f"manifest is format version {version}, newer than this etcetera "
                f"understands ({FORMAT_VERSION}): upgrade etcetera"
            )
        refs: list[PieceRef] = []
        if version >= 2:
            raw = doc.get("pieces")
            if not isinstance(raw, list):
                raise ManifestError("manifest has no piece list")
            for item in raw:
                if type(item) is not list or len(item) != 5:
                    raise ManifestError(f"manifest piece {item!r} is malformed")
                pid, group, files, size, length = item
                if not isinstance(group, str):
                    raise ManifestError(f"manifest piece group {group!r} is not a name")
                refs.append(
                    PieceRef(
                        _hex(pid, "piece id"),
                        group,
                        _int(files, "piece file count", 1, MAX_PIECE_FILES),
                        _int(size, "piece size"),
                        _int(length, "piece length", 1, MAX_PIECE),
                    )
                )
            if len({r.id for r in refs}) != len(refs):
                raise ManifestError("manifest lists a piece twice")
        return cls(version, tuple(refs), doc)


@dataclass(frozen=True, slots=True)
class EncodedManifest:
    """A manifest as stored (format v2).

    Attributes:
        root: canonical JSON bytes of the root; the manifest's digest is their SHA-256.
        digest: SHA-256 (hex) of ``root``.
        pieces: stored (zstd-compressed) bytes of each piece, by piece id.
        refs: the pieces as the root lists them.
        starts: the first path of each piece (what orders pieces laid out apart).
    """

    root: bytes
    digest: str
    pieces: dict[str, bytes]
    refs: tuple[PieceRef, ...]
    starts: tuple[str, ...]


def encode_manifest(manifest: Manifest, *, level: int = 3) -> EncodedManifest:
    """Encode a manifest as format v2: one small root and content-addressed pieces.

    Files are split into groups (each partition; files outside ``data/`` before and
    after it), and each group into pieces cut at path-hash points (see
    ``docs/format.md``): a pure function of the tree, so the same tree always gives
    the same root bytes.
    """
    with _gc.paused():
        return _encode(manifest, level)


def _encode(manifest: Manifest, level: int) -> EncodedManifest:
    files = manifest.files
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
    refs: list[PieceRef] = []
    starts: list[str] = []
    stored: dict[str, bytes] = {}
    for group, lo, hi in _group_runs(files, manifest.partitions):
        for a, b in _piece_cuts(files, lo, hi):
            raw = pieces.encode(_columns(group, files[a:b], manifest.objects))
            pid = sha256_hex(raw)
            size = sum(f.size for f in files[a:b])
            refs.append(PieceRef(pid, group, b - a, size, len(raw)))
            starts.append(files[a].path)
            stored[pid] = compressor.compress(raw)
    root = manifest_root(manifest.chunk_size, manifest.partitions, manifest.dirs, refs)
    return EncodedManifest(root, sha256_hex(root), stored, tuple(refs), tuple(starts))


def manifest_root(
    chunk_size: int, partitions: Iterable[str], dirs: Iterable[str], refs: Sequence[PieceRef]
) -> bytes:
    """Canonical bytes of a v2 root listing ``refs`` (already in path order)."""
    doc = {
        "format": MANIFEST_KIND,
        "version": FORMAT_VERSION,
        "chunk_size": chunk_size,
        "partitions": sorted(set(partitions)),
        "dirs": sorted(set(dirs)),
        "files": sum(r.files for r in refs),
        "size": sum(r.size for r in refs),
        "pieces": [[r.id, r.group, r.files, r.size, r.length] for r in refs],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def decode_manifest(root: bytes, stored: Mapping[str, bytes]) -> Manifest:
    """Parse and validate a v2 manifest from its root and its pieces' stored bytes."""
    return Manifest.parse(root, stored)


def _group_runs(
    files: Sequence[FileEntry], partitions: Sequence[str]
) -> Iterator[tuple[str, int, int]]:
    """``(group, lo, hi)``: the runs of ``files`` (sorted) that belong to one group."""
    path = operator.itemgetter(0)
    n = len(files)
    data_lo = bisect.bisect_left(files, "data/", key=path)
    data_hi = bisect.bisect_left(files, "data0", key=path)  # "0" follows "/"
    runs = [("", 0, data_lo), ("", data_hi, n)]
    for part in partitions:
        lo = bisect.bisect_left(files, f"data/{part}/", data_lo, data_hi, key=path)
        hi = bisect.bisect_left(files, f"data/{part}0", lo, data_hi, key=path)
        runs.append((part, lo, hi))
    runs = sorted(r for r in runs if r[2] > r[1])
    runs.sort(key=lambda r: r[1])
    if sum(hi - lo for _, lo, hi in runs) != n:
        raise ValueError("manifest has files under data/ outside its partitions")
    yield from runs


def _piece_cuts(files: Sequence[FileEntry], lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Split ``files[lo:hi]`` at path-hash points: between PIECE_MIN and PIECE_MAX files."""
    start = lo
    while start < hi:
        end = min(start + PIECE_MAX, hi)
        first = start + PIECE_MIN
        if first < end:
            paths = map(operator.itemgetter(0), files[first - 1 : end])
            crcs = map(zlib.crc32, map(str.encode, paths))
            hit = next((i for i, c in enumerate(crcs) if c < _PIECE_CUT), None)
            if hit is not None:
                end = first + hit
        yield start, end
        start = end


def _columns(
    group: str, files: Sequence[FileEntry], objects: Mapping[str, ObjectEntry]
) -> pieces.Columns:
    columns = (list(c) for c in zip(*files, strict=True))
    paths, sizes, modes, digests, oids, offsets, chunks = columns
    ids = sorted(set(oids) - {""})
    index = {oid: i for i, oid in enumerate(ids)}
    index[""] = -1
    return pieces.Columns(
        group,
        ids,
        [objects[i].kind for i in ids],
        [objects[i].size for i in ids],
        paths,
        sizes,
        modes,
        list(map(index.__getitem__, oids)),
        offsets,
        digests,
        chunks,
    )


_new_entry = tuple.__new__  # skips NamedTuple's Python-level __new__ (10^5 calls per manifest)


def _int(value: object, what: str, lo: int = 0, hi: int = MAX_SIZE) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ManifestError(f"manifest {what} {value!r} is out of range")
    return value


def _hex(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(f"manifest {what} {value!r} is not a SHA-256 hex digest")
    return value


def _header(doc: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    """chunk_size, partitions and dirs of a manifest document, checked."""
    chunk_size = _int(doc["chunk_size"], "chunk_size", 1, 1 << 34)
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


class _Tables:
    """Collects the checked file tables of a manifest (one per v1 doc, one per v2 piece)."""

    def __init__(self, chunk_size: int, partitions: list[str]) -> None:
        self.chunk_size = chunk_size
        self.partitions = set(partitions)
        self.objects: dict[str, ObjectEntry] = {}
        self.files: list[FileEntry] = []
        self.by_group: dict[str, list[str]] = {}

    def add(self, cols: pieces.Columns, *, trusted_types: bool) -> None:
        """Check one table and append its files (they must follow the previous ones)."""
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
                    _hex(c, "chunk digest")
        for col, what, lo, hi in (
            (cols.object_sizes, "object size", 0, MAX_SIZE),
            (cols.sizes, "file size", 0, MAX_SIZE),
            (cols.modes, "file mode", 0, 0o777),
            (cols.objects, "object index", -1, m - 1),
            (cols.offsets, "file offset", 0, MAX_SIZE),
        ):
            if col and not (lo <= min(col) and max(col) <= hi):
                value = next(x for x in col if not lo <= x <= hi)
                raise ManifestError(f"manifest {what} {value!r} is out of range")
        ids = cols.object_ids
        if ids != sorted(ids) or len(set(ids)) != m:
            raise ManifestError("manifest objects are not sorted and unique")
        for oid, kind, size in zip(ids, cols.object_kinds, cols.object_sizes, strict=True):
            known = self.objects.get(oid)
            if known is None:
                self.objects[oid] = ObjectEntry(oid, "blob" if kind == "blob" else "pack", size)
            elif (known.kind, known.size) != (kind, size):
                raise ManifestError(f"manifest object {oid} is listed twice, differently")
        paths = cols.paths
        check_paths(paths)
        if self.files and n and paths[0] <= self.files[-1].path:
            raise ManifestError(f"manifest paths are not sorted and unique at {paths[0]!r}")
        if not all(map(operator.lt, paths, itertools.islice(paths, 1, None))):
            bad = next(b for a, b in itertools.pairwise(paths) if a >= b)
            raise ManifestError(f"manifest paths are not sorted and unique at {bad!r}")
        self._check_groups(cols)
        # Every file inside its object (an empty file: no object, offset 0).
        osize = [*cols.object_sizes, 0]
        if not all(
            map(
                operator.le,
                map(operator.add, cols.offsets, cols.sizes),
                map(osize.__getitem__, cols.objects),
            )
        ):
            bad_path = next(
                p
                for p, o, s, i in zip(paths, cols.offsets, cols.sizes, cols.objects, strict=True)
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
            if len(ch) != -(-cols.sizes[j] // cs) or (
                combine([bytes.fromhex(c) for c in ch]) != cols.digests[j]
            ):
                raise ManifestError(f"manifest chunks of {paths[j]!r} do not match its digest")
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
            tuple(self.files), self.objects, tuple(partitions), self.chunk_size, tuple(dirs)
        )


def _shared(values: list[int]) -> Iterator[int]:
    """The same int object for equal values (modes: a handful of values, 10^7 files)."""
    table = {v: v for v in set(values)}
    return map(table.__getitem__, values)


def _build_v1(doc: dict[str, Any]) -> Manifest:
    chunk_size, partitions, dirs = _header(doc)
    raw_objects = doc["objects"]
    raw_files = doc["files"]
    if not isinstance(raw_objects, list) or not isinstance(raw_files, list):
        raise ManifestError("manifest files are malformed")
    for raw in raw_objects:
        if type(raw) is not list or len(raw) != 4:
            raise ManifestError(f"manifest object entry {raw!r} is malformed")
        if raw[1] not in ("pack", "blob"):
            raise ManifestError(f"manifest object kind {raw[1]!r} is unknown")
        if raw[3] != "identity":
            raise ManifestError(f"manifest object encoding {raw[3]!r} is unknown: upgrade etcetera")
    for raw in raw_files:
        if type(raw) is not list or len(raw) not in (6, 7):
            raise ManifestError(f"manifest file entry {raw!r} is malformed")
        if len(raw) == 7 and not isinstance(raw[6], list):
            raise ManifestError(f"manifest chunks of {raw[0]!r} are malformed")
    # v1 lists objects in id order with one global index: the same shape as one piece.
    cols = pieces.Columns(
        "",
        [o[0] for o in raw_objects],
        [o[1] for o in raw_objects],
        [o[2] for o in raw_objects],
        [f[0] for f in raw_files],
        [f[1] for f in raw_files],
        [f[2] for f in raw_files],
        [f[4] for f in raw_files],
        [f[5] for f in raw_files],
        [f[3] for f in raw_files],
        [tuple(f[6]) if len(f) == 7 else () for f in raw_files],
    )
    tables = _Tables(chunk_size, partitions)
    tables.add(cols, trusted_types=False)
    return tables.finish(partitions, dirs)


def _build_v2(
    root: ManifestRoot, stored: Mapping[str, bytes], only: Iterable[str] | None = None
) -> Manifest:
    chunk_size, partitions, dirs = _header(root.doc)
    files, size = root.doc["files"], root.doc["size"]
    if sum(r.files for r in root.pieces) != files or sum(r.size for r in root.pieces) != size:
        raise ManifestError("manifest root totals do not match its pieces")
    for ref in root.pieces:
        if ref.group and ref.group not in partitions:
            raise ManifestError(f"manifest piece of unlisted partition {ref.group!r}")
    loaded = None if only is None else tuple(sorted(set(only) & set(partitions)))
    tables = _Tables(chunk_size, partitions)
    decompressor = zstandard.ZstdDecompressor()
    for ref in wanted_pieces(root, only):
        data = stored.get(ref.id)
        if data is None:
            raise ManifestError(f"manifest piece {ref.id} is missing")
        raw = unpack_piece(decompressor, ref, data)
        cols = pieces.decode(raw)
        if cols.group != ref.group or len(cols.paths) != ref.files:
            raise ManifestError(f"manifest piece {ref.id} does not match its root entry")
        tables.add(cols, trusted_types=True)
        if sum(cols.sizes) != ref.size:
            raise ManifestError(f"manifest piece {ref.id} does not match its root entry")
    return replace(tables.finish(partitions, dirs), loaded=loaded)


def wanted_pieces(root: ManifestRoot, partitions: Iterable[str] | None) -> list[PieceRef]:
    """The pieces a reader of ``partitions`` needs (``None``: all of them)."""
    if partitions is None:
        return list(root.pieces)
    keep = {"", *partitions}
    return [r for r in root.pieces if r.group in keep]


def unpack_piece(decompressor: zstandard.ZstdDecompressor, ref: PieceRef, data: bytes) -> bytes:
    """The uncompressed bytes of a stored piece, checked against its id and length."""
    try:
        raw = decompressor.decompress(data, max_output_size=ref.length)
    except zstandard.ZstdError:
        raise IntegrityError(f"manifest piece {ref.id} is not valid zstd data") from None
    if len(raw) != ref.length or sha256_hex(raw) != ref.id:
        raise IntegrityError(f"manifest piece {ref.id} does not match its digest")
    return raw


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """``refs/NAME/K``: version K of NAME is the manifest with this digest."""

    name: str
    number: int
    manifest: str
    created: str = ""
    pushed_by: str = ""
    tool: str = ""
    files: int = 0
    size: int = 0

    def to_json(self) -> bytes:
        """Bytes of the record."""
        doc = {
            "format": VERSION_KIND,
            "version": FORMAT_VERSION,
            "name": self.name,
            "number": self.number,
            "manifest": self.manifest,
            "created": self.created,
            "pushed_by": self.pushed_by,
            "tool": self.tool,
            "files": self.files,
            "size": self.size,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes, name: str, number: int) -> VersionRecord:
        """Parse a record read from ``refs/NAME/NUMBER`` and check it names itself."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ManifestError(f"version record {name}@{number} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != VERSION_KIND:
            raise ManifestError(f"version record {name}@{number} is not an etcetera record")
        if isinstance(doc.get("version"), int) and doc["version"] > FORMAT_VERSION:
            raise ManifestError(
                f"version record {name}@{number} is a newer format: upgrade etcetera"
            )
        if doc.get("name") != name or doc.get("number") != number:
            raise ManifestError(f"version record {name}@{number} names another version")
        manifest = _hex(doc.get("manifest"), "version record manifest")

        def text(key: str) -> str:
            value = doc.get(key, "")
            return value if isinstance(value, str) else ""

        def count(key: str) -> int:
            value = doc.get(key, 0)
            return value if isinstance(value, int) and value >= 0 else 0

        return cls(
            name,
            number,
            manifest,
            text("created"),
            text("pushed_by"),
            text("tool"),
            count("files"),
            count("size"),
        )
