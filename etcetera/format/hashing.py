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
import zlib
from dataclasses import dataclass

CHUNK_SIZE = 8 * 1024 * 1024
READ_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Digest:
    """The digest of one file and, for multi-chunk files, of each chunk (hex).

    ``crcs`` (CRC32 of each chunk, from :func:`digest_file`) is not part of the format:
    a push uses it to check, eight times cheaper than SHA-256, that the bytes it reads
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


def digest_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """Digest and size of a file, read in 1 MiB blocks (call it in a worker thread).

    Returns the size actually read, so that a caller can notice a file that
    changed between ``stat`` and hashing.
    """
    raw: list[bytes] = []
    crcs: list[int] = []
    size = 0
    block_size = min(READ_BLOCK, chunk_size)
    with open(path, "rb", buffering=0) as fh:
        h = hashlib.sha256()
        crc = 0
        in_chunk = 0
        while True:
            block = fh.read(min(block_size, chunk_size - in_chunk))
            if not block:
                break
            h.update(block)
            crc = zlib.crc32(block, crc)
            in_chunk += len(block)
            size += len(block)
            if in_chunk == chunk_size:
                raw.append(h.digest())
                crcs.append(crc)
                h = hashlib.sha256()
                crc = 0
                in_chunk = 0
        if in_chunk or not raw:
            raw.append(h.digest())
            crcs.append(crc)
    if len(raw) == 1:
        return Digest(raw[0].hex(), (), tuple(crcs)), size
    return Digest(combine(raw), tuple(d.hex() for d in raw), tuple(crcs)), size


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
