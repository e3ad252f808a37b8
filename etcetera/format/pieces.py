"""The binary, columnar encoding of a manifest piece (formats v2 and v3, see ``docs/format.md``).

A piece is the file table of a run of consecutive paths of one group (one partition,
or the files outside ``data/``). It is stored zstd-compressed and named by the SHA-256
of its *uncompressed* bytes, so its name does not depend on the compressor's version.

A piece is a magic, a JSON header giving the counts, then fixed-width little-endian
columns back to back (:data:`V3` lists them; :data:`V2` those of format v2, still
read). This module only turns columns into bytes and back, at C speed (``array``,
``bytes.hex``, one ``split``); :mod:`etcetera.format.validate` checks what the columns say.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import ManifestError
from . import arrays, jsontext
from .hexdigests import HexDigests, raw_digests, split_hex

VERSION = 3  # the piece layout :func:`encode` writes
MAGICS = {2: b"etcetera-piece\x00\x02", 3: b"etcetera-piece\x00\x03"}
MAGIC = MAGICS[VERSION]
_HEADER_LEN = struct.Struct("<I")
KINDS = ("pack", "blob", "chunks")
ENCODINGS = ("identity", "zstd")
MAX_PIECE = 1 << 31  # bytes of one uncompressed piece: ~10^7 entries, far above any cut

#: Columns of each layout: (name, array typecode or "id" for 32-byte ids, "u8", "text",
#: and the header count giving its length). Their order is their order in the bytes.
_FILES = (
    ("paths", "text", "paths"),
    ("sizes", "Q", "files"),
    ("modes", "H", "files"),
    ("objects", "i", "files"),
    ("offsets", "Q", "files"),
    ("digests", "id", "files"),
    ("chunk_counts", "I", "files"),
    ("chunk_digests", "id", "chunks"),
)
_IDS_KINDS = (("object_ids", "id", "objects"), ("object_kinds", "u8", "objects"))
V2 = (*_IDS_KINDS, ("object_sizes", "Q", "objects"), *_FILES)
V3 = (
    *_IDS_KINDS,
    ("object_encodings", "u8", "objects"),
    ("object_sizes", "Q", "objects"),
    ("object_stored", "Q", "objects"),
    ("object_frame_sizes", "I", "objects"),
    ("frame_counts", "I", "objects"),
    ("frame_lengths", "I", "frames"),
    *_FILES,
    ("chunk_lengths", "Q", "chunks"),
    ("chunk_objects", "i", "chunks"),
    ("chunk_offsets", "Q", "chunks"),
)
LAYOUTS = {2: V2, 3: V3}
_WIDTH = {"id": 32, "u8": 1, "text": 1, "Q": 8, "I": 4, "H": 2, "i": 4}
_COUNTS = {
    2: ("files", "objects", "chunks", "paths"),
    3: ("files", "objects", "frames", "chunks", "paths"),
}


@dataclass(frozen=True, slots=True)
class Columns:
    """The decoded columns of one piece; entry ``i`` of each file list describes file ``i``.

    The last six lists are empty for a table read from format v1 or v2, whose objects
    are all ``identity`` and whose chunks are fixed (``chunk_size`` bytes, but the
    last) and back to back in the file's object from its offset.

    Attributes:
        group: partition name, or ``""`` for files outside ``data/``.
        object_ids: ids of the objects the piece's files live in, sorted, hex.
        object_kinds: ``"pack"``, ``"blob"`` or ``"chunks"`` per object.
        object_sizes: logical (inflated) bytes per object.
        paths: file paths, sorted.
        sizes: file sizes.
        modes: permission bits.
        objects: index into ``object_ids``; ``-1`` for an empty file and, in v3, for a
            file stored as chunks.
        offsets: where each file starts in its object (logical bytes; ``0`` without one).
        digests: file digests, hex.
        chunks: chunk digests (hex) of chunked files, ``()`` for the others.
        object_encodings: ``"identity"`` or ``"zstd"`` per object.
        object_stored: stored bytes per object.
        object_frame_sizes: logical bytes of each frame but the last (``0``: identity).
        object_frames: stored bytes of each frame, per object (``()``: identity).
        chunk_lengths: bytes of each chunk, per file (``()`` for an unchunked file).
        chunk_objects: index into ``object_ids`` of each chunk, per file.
        chunk_offsets: where each chunk starts in its object (logical bytes), per file.
        joined: ``paths`` joined by NULs, as a decoded piece held them (``None``: not
            known), so that the checks need not join them again.
    """

    group: str
    object_ids: list[str]
    object_kinds: list[str]
    object_sizes: Sequence[int]
    paths: list[str]
    sizes: Sequence[int]
    modes: Sequence[int]
    objects: Sequence[int]
    offsets: Sequence[int]
    digests: Sequence[str]
    chunks: list[tuple[str, ...]]
    object_encodings: list[str] = field(default_factory=list)
    object_stored: Sequence[int] = field(default_factory=list)
    object_frame_sizes: Sequence[int] = field(default_factory=list)
    object_frames: list[tuple[int, ...]] = field(default_factory=list)
    chunk_lengths: list[tuple[int, ...]] = field(default_factory=list)
    chunk_objects: list[tuple[int, ...]] = field(default_factory=list)
    chunk_offsets: list[tuple[int, ...]] = field(default_factory=list)
    joined: str | None = None

    @property
    def placed(self) -> bool:
        """Whether the table says where each chunk lives and how objects are encoded (v3)."""
        return len(self.object_encodings) == len(self.object_ids) and (
            len(self.chunk_lengths) == len(self.paths)
        )


def encode(cols: Columns) -> bytes:
    """Canonical uncompressed bytes of a piece.

    Placed columns (:attr:`Columns.placed`) give layout v3, the one a push writes
    (:func:`etcetera.format.v3.place` places a table of fixed chunks); others give v2.
    """
    version = 3 if cols.placed else 2
    paths = "\x00".join(cols.paths).encode()
    counts = [len(c) for c in cols.chunks]
    ids = {
        "object_ids": bytes.fromhex("".join(cols.object_ids)),
        "digests": raw_digests(cols.digests),
        "chunk_digests": bytes.fromhex("".join(h for c in cols.chunks for h in c)),
    }
    ints: dict[str, Sequence[int]] = {
        "object_kinds": [KINDS.index(k) for k in cols.object_kinds],
        "object_encodings": [ENCODINGS.index(e) for e in cols.object_encodings],
        "object_sizes": cols.object_sizes,
        "object_stored": cols.object_stored,
        "object_frame_sizes": cols.object_frame_sizes,
        "frame_counts": [len(f) for f in cols.object_frames],
        "frame_lengths": arrays.flat(cols.object_frames),
        "sizes": cols.sizes,
        "modes": cols.modes,
        "objects": cols.objects,
        "offsets": cols.offsets,
        "chunk_counts": counts,
        "chunk_lengths": arrays.flat(cols.chunk_lengths),
        "chunk_objects": arrays.flat(cols.chunk_objects),
        "chunk_offsets": arrays.flat(cols.chunk_offsets),
    }
    header = {
        "group": cols.group,
        "files": len(cols.paths),
        "objects": len(cols.object_ids),
        "frames": len(ints["frame_lengths"]),
        "chunks": sum(counts),
        "paths": len(paths),
    }
    text = json.dumps(
        {k: v for k, v in header.items() if k == "group" or k in _COUNTS[version]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    out = [MAGICS[version], _HEADER_LEN.pack(len(text)), text]
    for name, code, _ in LAYOUTS[version]:
        if code == "id":
            out.append(ids[name])
        elif code == "text":
            out.append(paths)
        elif code == "u8":
            out.append(bytes(ints[name]))
        else:
            out.append(arrays.le(code, ints[name]))
    return b"".join(out)


def version_of(data: bytes) -> int:
    """The layout version of an uncompressed piece, from its magic.

    Raises:
        ManifestError: the bytes do not start with a piece magic this etcetera knows.
    """
    for version, magic in MAGICS.items():
        if data.startswith(magic):
            return version
    if data.startswith(MAGIC[:-1]):
        raise ManifestError("manifest piece is a newer layout than this etcetera reads: upgrade")
    raise ManifestError("manifest piece has no etcetera piece header")


def _header(view: memoryview, version: int) -> tuple[str, dict[str, int], int]:
    pos = len(MAGICS[version])
    try:
        (hlen,) = _HEADER_LEN.unpack_from(view, pos)
        header = jsontext.loads(bytes(view[pos + 4 : pos + 4 + hlen]), "manifest piece header")
        group = header["group"]
        counts = {key: header[key] for key in _COUNTS[version]}
    except (struct.error, ValueError, KeyError, TypeError):
        raise ManifestError("manifest piece header is malformed") from None
    if not isinstance(group, str) or not all(
        type(x) is int and 0 <= x <= MAX_PIECE for x in counts.values()
    ):
        raise ManifestError("manifest piece header is malformed")
    return group, counts, pos + 4 + hlen


def decode(data: bytes, version: int | None = None) -> Columns:
    """Columns of an uncompressed piece (v2 or v3). Checks its framing, not its meaning.

    Args:
        data: the piece's uncompressed bytes.
        version: the layout its manifest root says its pieces have (``None``: any).

    Raises:
        ManifestError: the bytes are not a piece (of ``version``), or are truncated or
            padded, or hold a kind or encoding this etcetera does not know.
    """
    found = version_of(data)
    if version is not None and found != version:
        raise ManifestError(f"manifest piece is layout v{found} in a v{version} manifest")
    view = memoryview(data)
    group, counts, pos = _header(view, found)
    layout = LAYOUTS[found]
    if pos + sum(_WIDTH[code] * counts[n] for _, code, n in layout) != len(data):
        raise ManifestError("manifest piece is truncated or padded")
    raw: dict[str, memoryview] = {}
    hexes: dict[str, list[str]] = {}
    ints: dict[str, array[int]] = {}
    for name, code, count in layout:
        size = _WIDTH[code] * counts[count]
        raw[name] = view[pos : pos + size]
        pos += size
        if code == "id":
            if name != "digests":  # the files' digests stay raw bytes (HexDigests)
                hexes[name] = split_hex(raw[name])
        elif code not in ("u8", "text"):
            ints[name] = arrays.unle(code, raw[name])
    n = counts["files"]
    try:
        joined = str(raw["paths"], "utf-8")
    except UnicodeDecodeError:
        raise ManifestError("manifest piece paths are not UTF-8") from None
    paths = joined.split("\x00") if n else []
    if len(paths) != n:
        raise ManifestError("manifest piece path count does not match its header")
    kinds = bytes(raw["object_kinds"])
    if kinds.strip(bytes(range(len(KINDS) if found >= 3 else 2))):
        raise ManifestError("manifest piece has an unknown object kind")
    chunk_counts = ints["chunk_counts"]
    if counts["chunks"] == 0:  # (the usual case: all zero, seen in one pass of its bytes)
        bad_counts = bool(bytes(raw["chunk_counts"]).strip(b"\x00"))
    else:
        bad_counts = sum(chunk_counts) != counts["chunks"]
    if bad_counts:
        raise ManifestError("manifest piece chunk count does not match its header")
    empty: list[tuple[str, ...]] = [()] * n
    chunks = arrays.regroup(hexes["chunk_digests"], chunk_counts) if counts["chunks"] else empty
    base = Columns(
        group,
        hexes["object_ids"],
        [KINDS[k] for k in kinds],
        ints["object_sizes"],
        paths,
        ints["sizes"],
        ints["modes"],
        ints["objects"],
        ints["offsets"],
        HexDigests(bytes(raw["digests"])),
        chunks,
        joined=joined if n else None,
    )
    if found == 2:
        return base
    return _placed(base, bytes(raw["object_encodings"]), ints, counts, chunk_counts)


def _placed(
    base: Columns,
    encodings: bytes,
    ints: dict[str, array[int]],
    totals: dict[str, int],
    counts: Sequence[int],
) -> Columns:
    """``base`` with the v3 columns: encodings, stored sizes, frames, chunk places."""
    if encodings.strip(bytes(range(len(ENCODINGS)))):
        code = next(b for b in encodings if b >= len(ENCODINGS))
        raise ManifestError(f"manifest piece has an unknown object encoding ({code})")
    frame_counts = ints["frame_counts"]
    if sum(frame_counts) != totals["frames"]:
        raise ManifestError("manifest piece frame count does not match its header")
    if totals["chunks"]:  # (the counts add up to it: checked)
        lengths = arrays.regroup(ints["chunk_lengths"], counts)
        where = arrays.regroup(ints["chunk_objects"], counts)
        offsets = arrays.regroup(ints["chunk_offsets"], counts)
    else:
        lengths = where = offsets = [()] * len(base.paths)
    return replace(
        base,
        object_encodings=[ENCODINGS[e] for e in encodings],
        object_stored=ints["object_stored"],
        object_frame_sizes=ints["object_frame_sizes"],
        object_frames=arrays.regroup(ints["frame_lengths"], frame_counts),
        chunk_lengths=lengths,
        chunk_objects=where,
        chunk_offsets=offsets,
    )
