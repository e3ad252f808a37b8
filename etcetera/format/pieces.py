"""The binary, columnar encoding of a manifest piece (format v2, see ``docs/format.md``).

A piece is the file table of a run of consecutive paths of one group (one partition,
or the files outside ``data/``). It is stored zstd-compressed and named by the SHA-256
of its *uncompressed* bytes, so its name does not depend on the compressor's version.

This module only turns columns into bytes and back, at C speed (``array``, ``bytes.hex``,
one ``split``); :mod:`etcetera.format.validate` checks what the columns say.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ManifestError
from . import jsontext
from .table import HexDigests

MAGIC = b"etcetera-piece\x00\x02"
_HEADER_LEN = struct.Struct("<I")
_KINDS = ("pack", "blob")
MAX_PIECE = 1 << 31  # bytes of one uncompressed piece: ~10^7 entries, far above any cut


@dataclass(frozen=True, slots=True)
class Columns:
    """The decoded columns of one piece; entry ``i`` of each list describes file ``i``.

    Attributes:
        group: partition name, or ``""`` for files outside ``data/``.
        object_ids: ids of the objects the piece's files live in, sorted, hex.
        object_kinds: ``"pack"`` or ``"blob"`` per object.
        object_sizes: bytes per object.
        paths: file paths, sorted.
        sizes: file sizes.
        modes: permission bits.
        objects: index into ``object_ids``, ``-1`` for an empty file.
        offsets: where each file starts in its object.
        digests: file digests, hex.
        chunks: chunk digests (hex) of multi-chunk files, ``()`` for the others.
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


def _le(typecode: str, values: Iterable[int]) -> bytes:
    arr = array(typecode, values)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def _unle(typecode: str, data: memoryview) -> array[int]:
    arr = array(typecode)
    if len(data) % arr.itemsize:
        raise ManifestError("manifest piece is truncated")
    arr.frombytes(data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def _split_hex(data: memoryview) -> list[str]:
    text = data.hex()
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def encode(cols: Columns) -> bytes:
    """Canonical uncompressed bytes of a piece."""
    n, m = len(cols.paths), len(cols.object_ids)
    counts = [len(c) for c in cols.chunks]
    paths = "\x00".join(cols.paths).encode()
    header = json.dumps(
        {"group": cols.group, "files": n, "objects": m, "chunks": sum(counts), "paths": len(paths)},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return b"".join(
        (
            MAGIC,
            _HEADER_LEN.pack(len(header)),
            header,
            bytes.fromhex("".join(cols.object_ids)),
            bytes(_KINDS.index(k) for k in cols.object_kinds),
            _le("Q", cols.object_sizes),
            paths,
            _le("Q", cols.sizes),
            _le("H", cols.modes),
            _le("i", cols.objects),
            _le("Q", cols.offsets),
            bytes.fromhex("".join(cols.digests)),
            _le("I", counts),
            bytes.fromhex("".join(h for c in cols.chunks for h in c)),
        )
    )


def decode(data: bytes) -> Columns:
    """Columns of an uncompressed piece. Checks its framing, not its meaning.

    Raises:
        ManifestError: the bytes are not a piece, or are truncated or padded.
    """
    if not data.startswith(MAGIC):
        raise ManifestError("manifest piece has no etcetera piece header")
    view = memoryview(data)
    pos = len(MAGIC)
    try:
        (hlen,) = _HEADER_LEN.unpack_from(view, pos)
        header = jsontext.loads(bytes(view[pos + 4 : pos + 4 + hlen]), "manifest piece header")
        group, n, m, c, plen = (
            header["group"],
            header["files"],
            header["objects"],
            header["chunks"],
            header["paths"],
        )
    except (struct.error, ValueError, KeyError, TypeError):
        raise ManifestError("manifest piece header is malformed") from None
    if not isinstance(group, str) or not all(
        type(x) is int and 0 <= x <= MAX_PIECE for x in (n, m, c, plen)
    ):
        raise ManifestError("manifest piece header is malformed")
    pos += 4 + hlen
    sizes_of = {
        "ids": 32 * m,
        "kinds": m,
        "osizes": 8 * m,
        "paths": plen,
        "sizes": 8 * n,
        "modes": 2 * n,
        "objects": 4 * n,
        "offsets": 8 * n,
        "digests": 32 * n,
        "counts": 4 * n,
        "chunks": 32 * c,
    }
    if pos + sum(sizes_of.values()) != len(data):
        raise ManifestError("manifest piece is truncated or padded")
    part: dict[str, memoryview] = {}
    for key, size in sizes_of.items():
        part[key] = view[pos : pos + size]
        pos += size
    kinds = bytes(part["kinds"])
    if kinds.strip(b"\x00\x01"):
        raise ManifestError("manifest piece has an unknown object kind")
    try:
        paths = str(part["paths"], "utf-8").split("\x00") if n else []
    except UnicodeDecodeError:
        raise ManifestError("manifest piece paths are not UTF-8") from None
    if len(paths) != n:
        raise ManifestError("manifest piece path count does not match its header")
    counts = _unle("I", part["counts"])
    if sum(counts) != c:
        raise ManifestError("manifest piece chunk count does not match its header")
    chunks: list[tuple[str, ...]]
    if c:
        flat = _split_hex(part["chunks"])
        chunks, at = [], 0
        for k in counts:
            chunks.append(tuple(flat[at : at + k]) if k else ())
            at += k
    else:
        chunks = [()] * n
    return Columns(
        group,
        _split_hex(part["ids"]),
        [_KINDS[k] for k in kinds],
        _unle("Q", part["osizes"]),
        paths,
        _unle("Q", part["sizes"]),
        _unle("H", part["modes"]),
        _unle("i", part["objects"]),
        _unle("Q", part["offsets"]),
        HexDigests(bytes(part["digests"])),
        chunks,
    )
