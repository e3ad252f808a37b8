"""Format v2 of a manifest: a small JSON root and content-addressed pieces.

The root (named by its SHA-256: the manifest's digest) holds the header and the list
of pieces; each piece is the file table of a run of consecutive paths of one group
(one partition, or the files outside ``data/``), stored zstd-compressed (its bytes:
:mod:`etcetera.format.pieces`). Groups are cut into pieces at path-hash points, so the
encoding is a pure function of the tree, and an added or removed file changes its own
piece and at most the next; a reader of a few partitions reads the root, then only
their pieces.

This module writes the root and the pieces (:func:`encode_manifest`,
:func:`manifest_root`) and reads them back (:class:`ManifestRoot`, :func:`build`),
checking what the root and each piece's framing say; what the file tables say is
checked by :mod:`etcetera.format.validate`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import re
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import zstandard

from ..errors import IntegrityError, ManifestError
from . import _gc, jsontext, pieces, v3
from .chunkobjects import Extent
from .hashing import sha256_hex
from .manifest import FORMAT_VERSION, MANIFEST_KIND, FileTable, Manifest, ObjectEntry
from .parallel import ordered_map
from .validate import Tables, check_header, check_hex, check_int

PIECE_MIN = 1 << 12  # files per piece, at least (but the last of a group) ...
PIECE_MAX = 1 << 16  # ... and at most
_PIECE_CUT = (1 << 32) >> 14  # then cut after a file whose path's CRC-32 is below: ~16k more
MAX_PIECE_FILES = PIECE_MAX
#: Bytes of a v2 root: ~100,000 pieces (10^7 files take ~2,500). Only a v1 manifest,
#: one document holding every file, may be larger (up to ``MAX_V1`` bytes).
MAX_ROOT = 16 << 20
MAX_V1 = 4 << 30  # a v1 manifest of 10^7 files is ~1.3 GB of JSON
_V1_START = re.compile(
    rb'\s*\{\s*"format"\s*:\s*"etcetera/manifest"\s*,\s*"version"\s*:\s*1\s*[,}]'
)


def root_limit(head: bytes) -> int:
    """The largest a manifest whose first bytes are ``head`` may be.

    A root over ``MAX_ROOT`` is read (and parsed) only if it starts as a v1 manifest
    does, its format and version first: the version decides the bound before the
    parser spends memory on what may be 78 MB of piece list.
    """
    return MAX_V1 if _V1_START.match(head) else MAX_ROOT


def stored_limit(ref: PieceRef) -> int:
    """The largest the stored (zstd) bytes of a piece may be: zstd's worst case, plus a margin."""
    return ref.length + (ref.length >> 7) + (64 << 10)


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
        firsts: the first path of each piece, where the root records them (a root
            written before they were added has none: a reader then searches).
    """

    version: int
    pieces: tuple[PieceRef, ...]
    doc: dict[str, Any]
    firsts: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, data: bytes, what: str = "manifest") -> ManifestRoot:
        """Parse the header and the piece list of a manifest (``what`` names it in errors).

        Raises:
            ManifestError: not a manifest, a version this etcetera does not know, or
                a malformed piece list.
        """
        if len(data) > root_limit(data[:4096]):
            raise ManifestError(f"{what} is larger than a v2 root may be ({MAX_ROOT} bytes)")
        doc = jsontext.loads(data, what)
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
                        check_hex(pid, "piece id"),
                        group,
                        check_int(files, "piece file count", 1, MAX_PIECE_FILES),
                        check_int(size, "piece size"),
                        check_int(length, "piece length", 1, pieces.MAX_PIECE),
                    )
                )
            if len({r.id for r in refs}) != len(refs):
                raise ManifestError("manifest lists a piece twice")
        return cls(version, tuple(refs), doc, _firsts(doc, len(refs)))


def _firsts(doc: dict[str, Any], count: int) -> tuple[str, ...] | None:
    """The root's ``firsts`` (the first path of each piece), checked, or ``None``."""
    raw = doc.get("firsts")
    if raw is None:
        return None
    if (
        type(raw) is not list
        or len(raw) != count
        or not all(type(p) is str for p in raw)
        or not all(map(operator.lt, raw, raw[1:]))
    ):
        raise ManifestError("manifest first paths do not match its pieces")
    return tuple(raw)


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


def encode_manifest(
    manifest: Manifest, *, level: int = 3, identity: str | None = None
) -> EncodedManifest:
    """Encode a manifest as format v2: one small root and content-addressed pieces.

    Files are split into groups (each partition; files outside ``data/`` before and
    after it), and each group into pieces cut at path-hash points (see
    ``docs/format.md``): a pure function of the tree, so the same tree always gives
    the same root bytes. ``identity``: the digest of the same manifest with every
    object ``identity``, recorded in the root of one with framed objects (format v3).
    """
    with _gc.paused():
        return _encode(manifest, level, identity)


def _encode(manifest: Manifest, level: int, identity: str | None) -> EncodedManifest:
    files = manifest.files
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
    refs: list[PieceRef] = []
    starts: list[str] = []
    stored: dict[str, bytes] = {}
    for group, lo, hi in _group_runs(files, manifest.partitions):
        a = lo
        while a < hi:  # paths decoded a piece's worth at a time: memory stays one piece
            window = files.paths(a, min(a + PIECE_MAX, hi))
            b = a + _piece_cut(window)
            cols = _columns(group, files, a, b, window[: b - a], manifest.objects, manifest.extents)
            framing = _framing(cols, manifest.objects)
            raw = pieces.encode(v3.place(cols, framing, manifest.chunk_size, manifest.extents))
            pid = sha256_hex(raw)
            refs.append(PieceRef(pid, group, b - a, sum(cols.sizes), len(raw)))
            starts.append(cols.paths[0])
            stored[pid] = compressor.compress(raw)
            a = b
    root = manifest_root(
        manifest.chunk_size, manifest.partitions, manifest.dirs, refs, starts, identity,
        manifest.chunking if manifest.extents else None,
    )  # fmt: skip
    return EncodedManifest(root, sha256_hex(root), stored, tuple(refs), tuple(starts))


def manifest_root(
    chunk_size: int,
    partitions: Iterable[str],
    dirs: Iterable[str],
    refs: Sequence[PieceRef],
    firsts: Sequence[str],
    identity: str | None = None,
    chunking: Mapping[str, object] | None = None,
) -> bytes:
    """Canonical bytes of a v2 root listing ``refs`` (in path order) and their first paths.

    ``firsts`` (the first path of each piece) take a reader from a path to its piece
    without a search; a reader that does not know the key ignores it. So does one that
    does not know ``chunking`` (how content-chunked files were cut, for a later push).
    """
    doc: dict[str, Any] = {
        "format": MANIFEST_KIND,
        "version": FORMAT_VERSION,
        "chunk_size": chunk_size,
        "partitions": sorted(set(partitions)),
        "dirs": sorted(set(dirs)),
        "files": sum(r.files for r in refs),
        "size": sum(r.size for r in refs),
        "pieces": [[r.id, r.group, r.files, r.size, r.length] for r in refs],
        "firsts": list(firsts),
    }
    if identity is not None:
        doc["identity"] = identity
    if chunking is not None:
        doc["chunking"] = dict(chunking)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def decode_manifest(root: bytes, stored: Mapping[str, bytes]) -> Manifest:
    """Parse and validate a v2 manifest from its root and its pieces' stored bytes."""
    return Manifest.parse(root, stored)


def _group_runs(files: FileTable, partitions: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    """``(group, lo, hi)``: the runs of ``files`` (sorted) that belong to one group."""
    n = len(files)
    data_lo, data_hi = files.span("data/")
    runs = [("", 0, data_lo), ("", data_hi, n)]
    for part in partitions:
        runs.append((part, *files.span(f"data/{part}/", data_lo, data_hi)))
    runs = sorted(r for r in runs if r[2] > r[1])
    runs.sort(key=lambda r: r[1])
    if sum(hi - lo for _, lo, hi in runs) != n:
        raise ManifestError("manifest has files under data/ outside its partitions")
    yield from runs


def _piece_cut(paths: list[str]) -> int:
    """How many of ``paths`` (the next PIECE_MAX, or fewer at a group's end) the piece takes.

    Between PIECE_MIN and PIECE_MAX: the cut follows the first file from PIECE_MIN - 1
    on whose path's CRC-32 is below ``_PIECE_CUT`` (a pure function of the paths).
    """
    end = len(paths)
    if end > PIECE_MIN:
        crcs = map(zlib.crc32, map(str.encode, paths[PIECE_MIN - 1 : end]))
        hit = next(itertools.compress(itertools.count(), map(_PIECE_CUT.__gt__, crcs)), None)
        if hit is not None:
            return PIECE_MIN + hit
    return end


def _columns(
    group: str,
    files: FileTable,
    lo: int,
    hi: int,
    paths: list[str],
    objects: Mapping[str, ObjectEntry],
    extents: Mapping[str, tuple[Extent, ...]] | None = None,
) -> pieces.Columns:
    """The columns of piece ``files[lo:hi]`` (its objects renumbered from 0, in id order)."""
    own = files.object_ids(lo, hi)
    used = set(own) - {""}
    if extents:  # content-chunked files: the piece lists their chunks' objects
        for p in paths:
            used.update(e.object for e in extents.get(p, ()))
    ids = sorted(used)
    index = {oid: k for k, oid in enumerate(ids)}
    index[""] = -1
    return pieces.Columns(
        group,
        ids,
        [objects[i].kind for i in ids],
        [objects[i].size for i in ids],
        paths,
        files.sizes[lo:hi],
        files.modes[lo:hi],
        array("i", map(index.__getitem__, own)),
        files.offsets[lo:hi],
        files.digests(lo, hi),
        files.chunks(lo, hi),
    )


def _framing(cols: pieces.Columns, objects: Mapping[str, ObjectEntry]) -> list[v3.Framing]:
    return [v3.Framing(*objects[i][3:6]) for i in cols.object_ids]


def build(
    root: ManifestRoot, stored: Mapping[str, bytes], only: Iterable[str] | None = None
) -> Manifest:
    """The checked manifest of a v2 root and its pieces (only those ``only`` needs).

    Called by :meth:`Manifest.parse`, which also turns the errors of a malformed
    document (``KeyError``, ``TypeError`` ...) into ``ManifestError``.
    """
    chunk_size, partitions, dirs = check_header(root.doc)
    files, size = root.doc["files"], root.doc["size"]
    if sum(r.files for r in root.pieces) != files or sum(r.size for r in root.pieces) != size:
        raise ManifestError("manifest root totals do not match its pieces")
    for ref in root.pieces:
        if ref.group and ref.group not in partitions:
            raise ManifestError(f"manifest piece of unlisted partition {ref.group!r}")
    loaded = None if only is None else tuple(sorted(set(only) & set(partitions)))
    tables = Tables(chunk_size, partitions)
    first = dict(zip(root.pieces, root.firsts or (), strict=False))

    def decoded(ref: PieceRef) -> pieces.Columns:
        data = stored.get(ref.id)
        if data is None:
            raise ManifestError(f"manifest piece {ref.id} is missing")
        return pieces.decode(unpack_piece(zstandard.ZstdDecompressor(), ref, data), root.version)

    refs = wanted_pieces(root, only)
    for ref, cols in zip(refs, ordered_map(decoded, refs), strict=True):
        check_piece(ref, cols, first.get(ref))
        tables.add(cols, trusted_types=True)
        if sum(cols.sizes) != ref.size:
            raise ManifestError(f"manifest piece {ref.id} does not match its root entry")
    chunking = root.doc.get("chunking")
    return replace(
        tables.finish(partitions, dirs),
        loaded=loaded,
        chunking=chunking if isinstance(chunking, dict) else None,
    )


def check_piece(ref: PieceRef, cols: pieces.Columns, first: str | None) -> None:
    """Refuse a decoded piece that is not what its root entry (and first path) say."""
    if cols.group != ref.group or len(cols.paths) != ref.files:
        raise ManifestError(f"manifest piece {ref.id} does not match its root entry")
    if first is not None and cols.paths[0] != first:
        raise ManifestError(f"manifest piece {ref.id} does not start at its root's first path")


def wanted_pieces(root: ManifestRoot, partitions: Iterable[str] | None) -> list[PieceRef]:
    """The pieces a reader of ``partitions`` needs (``None``: all of them)."""
    if partitions is None:
        return list(root.pieces)
    keep = {"", *partitions}
    return [r for r in root.pieces if r.group in keep]


def unpack_piece(decompressor: zstandard.ZstdDecompressor, ref: PieceRef, data: bytes) -> bytes:
    """The uncompressed bytes of a stored piece, checked against its id and length.

    The frame's declared content size is checked against the root's ``length`` before
    anything is inflated (python-zstandard allocates what the frame declares, whatever
    ``max_output_size`` says); a large piece is first inflated in steps, only hashed,
    so that bytes which do not match its id never take its ``length`` in memory.
    """
    bad = IntegrityError(f"manifest piece {ref.id} does not match its digest")
    try:
        declared = zstandard.frame_content_size(data)
        if declared not in (-1, ref.length):
            raise IntegrityError(
                f"manifest piece {ref.id} declares {declared} bytes, its root {ref.length}"
            )
        if ref.length > _INFLATE_CHECKED and not _inflates_to(decompressor, ref, data):
            raise bad
        raw = decompressor.decompress(data, max_output_size=ref.length)
    except zstandard.ZstdError:
        raise IntegrityError(f"manifest piece {ref.id} is not valid zstd data") from None
    if len(raw) != ref.length or sha256_hex(raw) != ref.id:
        raise bad
    return raw


_INFLATE_CHECKED = 16 << 20  # pieces above: hashed while inflating before being kept


def _inflates_to(decompressor: zstandard.ZstdDecompressor, ref: PieceRef, data: bytes) -> bool:
    digest = hashlib.sha256()
    seen = 0
    with decompressor.stream_reader(data) as reader:
        while block := reader.read(1 << 20):
            seen += len(block)
            if seen > ref.length:
                return False
            digest.update(block)
    return seen == ref.length and digest.hexdigest() == ref.id
