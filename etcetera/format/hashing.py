"""Content digests of format v1.

A file is cut into fixed chunks of :data:`CHUNK_SIZE` bytes. Its digest is the
SHA-256 of its bytes when it has at most one chunk, else the SHA-256 of the
concatenated (binary) chunk digests. Parts and ranges are whole chunks, so each
one is verified as it arrives, in parallel, and the file digest follows from the
chunk digests without reading the file twice.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from dataclasses import dataclass

CHUNK_SIZE = 8 * 1024 * 1024
READ_BLOCK = 1024 * 1024

_buffers = threading.local()


@dataclass(frozen=True, slots=True)
class Digest:
    """The digest of one file and, for multi-chunk files, of each chunk (hex).

    ``crcs`` (CRC32 of each chunk, from :func:`digest_file`) is not part of the format:
    a push uses it to check, two to eight times cheaper than SHA-256, that the bytes it reads
    to send are still the bytes it hashed.
    """

    hex: str
    chunks: tuple[str, ...] = ()
    crcs: tuple[int, ...] = ()


def combine(chunk_digests: list[bytes] | tuple[bytes, ...]) -> str:
    """File digest from binary chunk digests (more than one chunk)."""
    return hashlib.sha256(b"".join(chunk_digests)).hexdigest()


def digest_bytes(data: bytes | memoryview, chunk_size: int = CHUNK_SIZE) -> Digest:
    """Digest of an in-memory body."""
    if len(data) <= chunk_size:
        return Digest(hashlib.sha256(data).hexdigest())
    view = memoryview(data)
    raw = [
        hashlib.sha256(view[i : i + chunk_size]).digest() for i in range(0, len(view), chunk_size)
    ]
    return Digest(combine(raw), tuple(d.hex() for d in raw))


def _block(size: int) -> memoryview:
    """The calling thread's read buffer: one per I/O thread, not one per file."""
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None or len(view) < size:
        view = _buffers.view = memoryview(bytearray(size))
    return view[:size]


def digest_chunks(
    path: str | os.PathLike[str],
    first: int = 0,
    count: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    *,
    with_crc: bool = True,
) -> tuple[list[bytes], list[int], int]:
    """SHA-256 (binary) and CRC32 of ``count`` chunks of a file from chunk ``first``.

    Chunks are independent: ranges of whole chunks of one file, hashed in several
    threads and joined in order (:func:`join`), give what :func:`digest_file` gives.
    Reads 1 MiB blocks into the calling thread's one buffer; call it in a worker thread
    (hashlib and zlib release the GIL).

    Args:
        path: the file.
        first: index of the range's first chunk.
        count: chunks in the range; ``None`` reads to the end of the file, so that the
            last range of a file notices one that grew.
        chunk_size: the format's chunk size.
        with_crc: whether to take the CRC32s too (without, the CRC list is empty).

    Returns:
        The chunks' digests and CRCs, and the bytes read: fewer than the range's when
        the file ends inside it (the range then ends with a short chunk). An empty file
        is one chunk of no bytes; a range past the end has none.
    """
    raw: list[bytes] = []
    crcs: list[int] = []
    size = 0
    view = _block(min(READ_BLOCK, chunk_size))
    with open(path, "rb", buffering=0) as fh:
        if first:
            fh.seek(first * chunk_size)
        while count is None or len(raw) < count:
            h = hashlib.sha256()
            crc = 0
            in_chunk = 0
            while in_chunk < chunk_size:
                n = fh.readinto(view[: chunk_size - in_chunk])
                if not n:
                    break
                h.update(view[:n])
                if with_crc:
                    crc = zlib.crc32(view[:n], crc)
                in_chunk += n
            if in_chunk or not (raw or first):
                raw.append(h.digest())
                if with_crc:
                    crcs.append(crc)
                size += in_chunk
            if in_chunk < chunk_size:
                break
    return raw, crcs, size


def join(raw: list[bytes], crcs: list[int]) -> Digest:
    """The digest of a file from its chunks' digests and CRCs, in order."""
    if len(raw) == 1:
        return Digest(raw[0].hex(), (), tuple(crcs))
    return Digest(combine(raw), tuple(d.hex() for d in raw), tuple(crcs))


def digest_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """Digest and size of a file, read in 1 MiB blocks (call it in a worker thread).

    Returns the size actually read, so that a caller can notice a file that
    changed between ``stat`` and hashing.
    """
    raw, crcs, size = digest_chunks(path, 0, None, chunk_size)
    return join(raw, crcs), size


def digest_small(path: str | os.PathLike[str], size: int) -> tuple[Digest, int]:
    """:func:`digest_file` of a file of ``size`` bytes, at most one chunk: one read.

    One ``open``, one ``read`` of one byte more than ``size`` (a file that grew shows in
    the size returned) and one ``close``: a small file costs a third less than through a
    file object and a read loop, and a push of many small files is that cost.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    return Digest(hashlib.sha256(data).hexdigest(), (), (zlib.crc32(data),)), len(data)


def sha256_hex(data: bytes | memoryview) -> str:
    """Plain SHA-256 (hex) of a body."""
    return hashlib.sha256(data).hexdigest()


# -- CRC32 of a concatenation from the CRC32s of its pieces (zlib's crc32_combine) ---------
# A part's transport checksum is then derived from the chunk CRCs hashing already took,
# instead of a second pass over the bytes.
_CRC_POLY = 0xEDB88320  # reflected


def _multmodp(a: int, b: int) -> int:
    """``a * b`` modulo the CRC polynomial (reflected bit order)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    p = 1 << 30  # x^1
    table = [p]
    for _ in range(31):
        p = _multmodp(p, p)
        table.append(p)
    return tuple(table)


_X2N = _x2n_table()  # x^(2^n) modulo the polynomial


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """``zlib.crc32(a + b)`` from ``crc1 = zlib.crc32(a)``, ``crc2 = zlib.crc32(b)``, ``len(b)``."""
    p = 1 << 31  # x^0
    n, k = length2, 3  # x^(8 * length2): a byte is 8 bits
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2
